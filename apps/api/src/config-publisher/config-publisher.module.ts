import { Global, Module } from '@nestjs/common';
import { ConfigPublisherService } from './config-publisher.service.js';

@Global()
@Module({ providers: [ConfigPublisherService], exports: [ConfigPublisherService] })
export class ConfigPublisherModule {}
