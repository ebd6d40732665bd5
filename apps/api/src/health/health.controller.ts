import { Controller, Get, Logger, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { PrismaClient } from '@portcullis/db';
import { Public } from '../auth/decorators.js';
import { NatsService } from '../nats/nats.service.js';

const CHECK_TIMEOUT_MS = 2_000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms).unref())]);
}

@ApiTags('health')
@Controller()
export class HealthController {
  private readonly logger = new Logger(HealthController.name);

  constructor(
    private readonly prisma: PrismaClient,
    private readonly nats: NatsService,
  ) {}

  /** Alive: the process answers. */
  @Public()
  @Get('healthz')
  healthz(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Ready: Postgres answers `SELECT 1` and NATS is connected; 503 naming what failed. */
  @Public()
  @Get('readyz')
  async readyz(@Res() res: Response): Promise<void> {
    const checks: Record<string, 'ok' | string> = {};
    try {
      await withTimeout(this.prisma.$queryRaw`SELECT 1`, CHECK_TIMEOUT_MS);
      checks.database = 'ok';
    } catch (err) {
      // The reason goes to the log only: this route is public and driver errors name hosts.
      this.logger.warn(`readyz: database check failed: ${(err as Error).message}`);
      checks.database = 'failed';
    }
    checks.nats = this.nats.isConnected() ? 'ok' : 'failed';
    const failed = Object.entries(checks).filter(([, v]) => v !== 'ok').map(([k]) => k);
    if (failed.length) {
      res.status(503).json({ status: 'unavailable', checks, error: { code: 'not_ready', message: `not ready: ${failed.join(', ')}` } });
      return;
    }
    res.status(200).json({ status: 'ok', checks });
  }
}
