import { Global, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { createPrismaClient, PrismaClient } from '@portcullis/db';
import { ApiConfig } from '../config/env.js';

/** Disconnects the shared client when the app closes. */
@Injectable()
class PrismaLifecycle implements OnApplicationShutdown {
  constructor(private readonly prisma: PrismaClient) {}
  async onApplicationShutdown(): Promise<void> {
    await this.prisma.$disconnect();
  }
}

/**
 * The Prisma client, injectable by its class: `constructor(private readonly prisma: PrismaClient)`.
 * Global so every domain module (and the other engineers' modules) can use it without importing this one.
 */
@Global()
@Module({
  providers: [
    { provide: PrismaClient, inject: [ApiConfig], useFactory: (config: ApiConfig) => createPrismaClient(config.env.DATABASE_URL) },
    PrismaLifecycle,
  ],
  exports: [PrismaClient],
})
export class PrismaModule {}
