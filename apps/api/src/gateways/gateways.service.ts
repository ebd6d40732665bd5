import { Injectable } from '@nestjs/common';
import { PrismaClient } from '@portcullis/db';
import type { Heartbeat } from '@portcullis/protocol';
import { NotFoundError } from '../common/errors.js';
import { ControlEventsService } from '../control-events/control-events.service.js';
import { ConfigPublisherService } from '../config-publisher/config-publisher.service.js';
import type { ConfigKeys, GatewayView, PoolView, PutPool } from './dto/gateway.dto.js';

export const LIVE_WINDOW_MS = 15_000;

@Injectable()
export class GatewaysService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly events: ControlEventsService,
    private readonly publisher: ConfigPublisherService,
  ) {}

  /** Public keys that verify config snapshots: what gateways get at deploy time. */
  configKeys(): ConfigKeys {
    return { keys: this.publisher.signingKeys() };
  }

  async listGateways(pool?: string): Promise<GatewayView[]> {
    const rows = await this.prisma.gateway.findMany({ where: pool ? { pool } : {}, orderBy: [{ pool: 'asc' }, { id: 'asc' }] });
    const now = Date.now();
    return rows.map((g) => ({
      id: g.id,
      pool: g.pool,
      version: g.version,
      address: g.address,
      liveSessions: g.liveSessions,
      configRevision: g.configRevision,
      startedAt: g.startedAt.toISOString(),
      lastHeartbeat: g.lastHeartbeat.toISOString(),
      live: now - g.lastHeartbeat.getTime() <= LIVE_WINDOW_MS,
    }));
  }

  /** Upserts the fleet row for one heartbeat. The heartbeat's own clock is not trusted for liveness. */
  async recordHeartbeat(hb: Heartbeat): Promise<void> {
    const data = {
      pool: hb.pool,
      version: hb.version,
      address: hb.address ?? null,
      liveSessions: hb.liveSessions,
      configRevision: hb.configRevision,
      startedAt: new Date(hb.startedAt),
      lastHeartbeat: new Date(),
    };
    await this.prisma.gateway.upsert({ where: { id: hb.id }, create: { id: hb.id, ...data }, update: data });
  }

  async listPools(): Promise<PoolView[]> {
    const [pools, conns, gws] = await Promise.all([
      this.prisma.gatewayPool.findMany({ orderBy: { name: 'asc' } }),
      this.prisma.connection.groupBy({ by: ['pool'], _count: { _all: true } }),
      this.prisma.gateway.groupBy({ by: ['pool'], _count: { _all: true }, where: { lastHeartbeat: { gt: new Date(Date.now() - LIVE_WINDOW_MS) } } }),
    ]);
    return pools.map((p) => ({
      name: p.name,
      publicKey: p.publicKey,
      revision: p.revision,
      connections: conns.find((c) => c.pool === p.name)?._count._all ?? 0,
      gateways: gws.find((g) => g.pool === p.name)?._count._all ?? 0,
      createdAt: p.createdAt.toISOString(),
      updatedAt: p.updatedAt.toISOString(),
    }));
  }

  async getPool(name: string): Promise<PoolView> {
    const pool = (await this.listPools()).find((p) => p.name === name);
    if (!pool) throw new NotFoundError(`gateway pool "${name}" does not exist`, 'pool_not_found');
    return pool;
  }

  /** Registers or rotates a pool's public key; the next snapshot is sealed for it. */
  async putPool(name: string, input: PutPool, actor: string): Promise<{ pool: PoolView; created: boolean }> {
    const before = await this.prisma.gatewayPool.findUnique({ where: { name } });
    await this.prisma.gatewayPool.upsert({ where: { name }, create: { name, publicKey: input.publicKey }, update: { publicKey: input.publicKey } });
    const pool = await this.getPool(name);
    this.publisher.requestPublish();
    await this.events.record({
      type: 'connection.changed',
      actor,
      data: { action: before ? 'rotate-pool-key' : 'create-pool', target: `pool:${name}`, before: before ? { publicKey: before.publicKey } : undefined, after: { publicKey: input.publicKey } },
    });
    return { pool, created: !before };
  }
}
