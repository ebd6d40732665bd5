import { Global, Module } from '@nestjs/common';
import { ApiConfig } from '../config/env.js';
import { NatsService } from './nats.service.js';

@Global()
@Module({
  providers: [
    {
      provide: NatsService,
      inject: [ApiConfig],
      useFactory: async (config: ApiConfig) => {
        const nats = new NatsService(config);
        await nats.start();
        return nats;
      },
    },
  ],
  exports: [NatsService],
})
export class NatsModule {}
