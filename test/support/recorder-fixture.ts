/** Shared by apps/api's sessions-*.test.ts / audit-*.test.ts (cross-app, so it lives here, not in apps/api): a real recorder on the test api's NATS prefix and master key, signed events, tokens by role. */
import { randomBytes, randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { PrismaClient } from '@portcullis/db';
import { deriveKey, natsNames, signEvent, type Role, type WireEvent } from '@portcullis/protocol';
import { Recorder } from '../../apps/recorder/src/recorder.js';
import { parseRecorderEnv } from '../../apps/recorder/src/env.js';
import { TokensService } from '../../apps/api/src/auth/tokens.service.js';
import type { TestApi } from '../../apps/api/test/support.js';

export class RecordingFixture {
  readonly names;
  readonly eventKey: Buffer;
  nc!: NatsConnection;
  readonly recorders: Recorder[] = [];
  readonly sessions: string[] = [];
  private readonly identities: string[] = [];
  private readonly groups: string[] = [];

  constructor(readonly api: TestApi) {
    this.names = natsNames(api.prefix);
    this.eventKey = deriveKey(Buffer.from(api.masterKey, 'hex'), 'event-signing');
  }

  get prisma(): PrismaClient {
    return this.api.get(PrismaClient);
  }

  async start(recorders = 1, env: Record<string, string> = {}): Promise<this> {
    this.nc = await connect({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' });
    for (let i = 0; i < recorders; i++) {
      const r = new Recorder(parseRecorderEnv({
        DATABASE_URL: process.env.DATABASE_URL, NATS_PREFIX: this.api.prefix, PORTCULLIS_MASTER_KEY: this.api.masterKey,
        RECORDER_HTTP_PORT: '0', RECORDER_HTTP_HOST: '127.0.0.1', RECORDER_ACK_WAIT_SECONDS: '5', CHECKPOINT_SECONDS: '3600',
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent', ...env,
      }), { http: false });
      await r.start();
      this.recorders.push(r);
    }
    return this;
  }

  newSession(): string {
    const id = `api-${randomUUID()}`;
    this.sessions.push(id);
    return id;
  }

  event(sessionId: string, seq: number, type: WireEvent['type'], data: Record<string, unknown>, identity = 'carol'): WireEvent {
    return signEvent({ id: randomUUID(), sessionId, seq, time: new Date().toISOString(), type, identity, connection: 'demo', gateway: 'gw-t', data }, this.eventKey);
  }

  /** A replayable session: allowed and blocked statements, masking, an approval, an error. */
  richSession(sessionId: string, identity = 'carol'): WireEvent[] {
    const steps: Array<[WireEvent['type'], Record<string, unknown>]> = [
      ['session.start', { clientAddr: '10.1.2.3:50000', user: 'carol', database: 'demo', applicationName: 'psql', tls: true, pool: 'default', policy: 'default', policyVersion: 1 }],
      ['query', { sql: 'SELECT name, email FROM customers LIMIT 2', protocol: 'simple' }],
      ['decision', { action: 'allow', rule: 'default', reason: 'no guardrail matched' }],
      ['result', { tag: 'SELECT 2', rows: 2, durationMs: 3.2, masking: { columns: ['email'], values: 2 } }],
      ['query', { sql: 'DROP TABLE customers', protocol: 'simple' }],
      ['decision', { action: 'block', rule: 'no-destructive-ddl', reason: 'DDL is not allowed' }],
      ['query', { sql: 'DELETE FROM customers', protocol: 'simple' }],
      ['decision', { action: 'require_approval', rule: 'bulk-writes', reason: 'unbounded write' }],
      ['approval.requested', { approvalId: randomUUID(), sql: 'DELETE FROM customers', rule: 'bulk-writes', reason: 'unbounded write' }],
      ['approval.decided', { approvalId: randomUUID(), status: 'denied', decidedBy: 'bob', comment: 'no' }],
      ['query', { sql: 'SELECT * FROM nope', protocol: 'extended' }],
      ['decision', { action: 'allow', rule: 'default', reason: 'no guardrail matched' }],
      ['result', { rows: 0, durationMs: 0.8, error: { code: '42P01', message: 'relation "nope" does not exist' } }],
      ['session.end', { reason: 'client', durationMs: 1200, statements: 4, bytesIn: 300, bytesOut: 900 }],
    ];
    return steps.map(([type, data], i) => this.event(sessionId, i + 1, type, data, identity));
  }

  async publish(events: WireEvent[]): Promise<void> {
    const js = jetstream(this.nc);
    await Promise.all(events.map((e) => js.publish(e.sessionId ? this.names.sessionEvents(e.sessionId) : this.names.controlEvents, JSON.stringify(e), { msgID: e.id })));
  }

  async waitStored(sessionIds: string[], count: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = await this.prisma.event.count({ where: { chain: { in: sessionIds } } });
      if (n === count) return;
      if (Date.now() > deadline) throw new Error(`stored ${n} of ${count} events`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** An api token for a fresh identity in a fresh group with `roles`. */
  async tokenWithRoles(roles: Role[]): Promise<string> {
    const suffix = randomBytes(4).toString('hex');
    const group = await this.prisma.group.create({ data: { name: `rec-${roles.join('-') || 'none'}-${suffix}`, roles } });
    const identity = await this.prisma.identity.create({ data: { kind: 'person', subject: `rec-user-${suffix}` } });
    await this.prisma.groupMember.create({ data: { identityId: identity.id, groupId: group.id } });
    this.identities.push(identity.id);
    this.groups.push(group.id);
    const { access_token } = await this.api.get(TokensService).issueApiToken(identity.id);
    return `Bearer ${access_token}`;
  }

  async close(): Promise<void> {
    for (const r of this.recorders) await r.stop().catch(() => undefined);
    const jsm = await jetstreamManager(this.nc);
    for (const s of [this.names.eventStream, this.names.deadLetterStream]) await jsm.streams.delete(s).catch(() => undefined);
    await this.nc.close();
    const prisma = this.prisma;
    await prisma.event.deleteMany({ where: { chain: { in: this.sessions } } });
    await prisma.session.deleteMany({ where: { id: { in: this.sessions } } });
    await prisma.identity.deleteMany({ where: { id: { in: this.identities } } });
    await prisma.group.deleteMany({ where: { id: { in: this.groups } } });
  }
}
