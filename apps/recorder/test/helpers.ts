import { randomBytes, randomUUID } from 'node:crypto';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import pg from 'pg';
import { deriveKey, encodeEventBatch, EVENT_BATCH_SIG_HEADER, eventPartition, GENESIS_HASH, chainedEventHash, natsNames, normaliseTime, signEvent, type NatsNames, type WireEvent } from '@portcullis/protocol';
import { Recorder } from '../src/recorder.js';
import { parseRecorderEnv } from '../src/env.js';

export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

/** One per test file: a random NATS prefix (own streams and consumers), its own master key, a pg pool. */
export class Harness {
  readonly prefix = `rt${randomBytes(5).toString('hex')}`;
  readonly names: NatsNames = natsNames(this.prefix);
  readonly masterKey = randomBytes(32);
  readonly eventKey = deriveKey(this.masterKey, 'event-signing');
  readonly db = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 3 });
  nc!: NatsConnection;
  js!: JetStreamClient;
  /** publish() sends batch messages of this many events (as the gateway does); 0 = one event per message */
  batchEvents = 0;
  private recorders: Recorder[] = [];
  private sessions: string[] = [];

  async setup(): Promise<this> {
    this.nc = await connect({ servers: NATS_URL });
    this.js = jetstream(this.nc);
    return this;
  }

  env(overrides: Record<string, string> = {}) {
    return parseRecorderEnv({
      DATABASE_URL: process.env.DATABASE_URL,
      NATS_URL,
      NATS_PREFIX: this.prefix,
      PORTCULLIS_MASTER_KEY: this.masterKey.toString('hex'),
      RECORDER_HTTP_PORT: '0',
      RECORDER_HTTP_HOST: '127.0.0.1',
      RECORDER_ACK_WAIT_SECONDS: '2',
      RECORDER_GAP_SECONDS: '30',
      CHECKPOINT_SECONDS: '3600',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
      ...overrides,
    });
  }

  async recorder(overrides: Record<string, string> = {}): Promise<Recorder> {
    const r = new Recorder(this.env(overrides));
    await r.start();
    this.recorders.push(r);
    return r;
  }

  newSession(): string {
    const id = `s-${randomUUID()}`;
    this.sessions.push(id);
    return id;
  }

  /** A signed session event. */
  sessionEvent(sessionId: string, seq: number, type: WireEvent['type'], data: Record<string, unknown> = {}, time = new Date()): WireEvent {
    return signEvent({ id: randomUUID(), sessionId, seq, time: time.toISOString(), type, identity: 'alice', connection: 'demo', gateway: 'gw-1', data }, this.eventKey);
  }

  controlEvent(type: WireEvent['type'], data: Record<string, unknown>): WireEvent {
    return signEvent({ id: randomUUID(), sessionId: null, seq: 0, time: new Date().toISOString(), type, identity: 'admin', connection: null, gateway: null, data }, this.eventKey);
  }

  /** A whole session: start, n query/decision/result triples, end. */
  sessionEvents(sessionId: string, statements: number, time = new Date()): WireEvent[] {
    const out: WireEvent[] = [this.sessionEvent(sessionId, 1, 'session.start', { clientAddr: '127.0.0.1:5555', user: 'alice', database: 'demo', pool: 'default', tls: false }, time)];
    for (let i = 0; i < statements; i++) {
      out.push(this.sessionEvent(sessionId, out.length + 1, 'query', { sql: `SELECT ${i}`, protocol: 'simple' }, time));
      out.push(this.sessionEvent(sessionId, out.length + 1, 'decision', { action: 'allow', rule: 'default', reason: 'allowed' }, time));
      out.push(this.sessionEvent(sessionId, out.length + 1, 'result', { tag: 'SELECT 1', rows: 1, durationMs: 1.5, masking: { columns: ['email'], values: 1 } }, time));
    }
    out.push(this.sessionEvent(sessionId, out.length + 1, 'session.end', { reason: 'client', durationMs: 10, statements, bytesIn: 1, bytesOut: 2 }, time));
    return out;
  }

  /** A whole session as the gateway records simple-protocol statements: start, n `statement` events, end. */
  statementSession(sessionId: string, statements: number, time = new Date()): WireEvent[] {
    const out: WireEvent[] = [this.sessionEvent(sessionId, 1, 'session.start', { clientAddr: '127.0.0.1:5555', user: 'alice', database: 'demo', pool: 'default', tls: false }, time)];
    for (let i = 0; i < statements; i++) {
      out.push(this.sessionEvent(sessionId, out.length + 1, 'statement', {
        sql: `SELECT ${i}`, protocol: 'simple', action: 'allow', rule: 'default', reason: 'allowed', cached: true, tag: 'SELECT 1', rows: 1, durationMs: 0.4,
      }, time));
    }
    out.push(this.sessionEvent(sessionId, out.length + 1, 'session.end', { reason: 'client', durationMs: 10, statements, bytesIn: 1, bytesOut: 2 }, time));
    return out;
  }

  subjectOf(e: WireEvent): string {
    return e.sessionId === null ? this.names.controlEvents : this.names.sessionEvents(e.sessionId);
  }

  async publish(events: WireEvent[], opts: { dedup?: boolean } = {}): Promise<void> {
    if (this.batchEvents > 0) {
      // as the gateway does: a batch carries sessions of one partition, on that partition's subject
      const byPartition = new Map<number, WireEvent[]>();
      for (const e of events) {
        const p = e.sessionId === null ? 0 : eventPartition(e.sessionId);
        byPartition.set(p, [...(byPartition.get(p) ?? []), e]);
      }
      const acks: Promise<unknown>[] = [];
      for (const [p, evs] of byPartition) {
        for (let i = 0; i < evs.length; i += this.batchEvents) acks.push(this.publishBatch(evs.slice(i, i + this.batchEvents), { ...opts, partition: p }));
      }
      await Promise.all(acks);
      return;
    }
    const acks = events.map((e) => this.js.publish(this.subjectOf(e), JSON.stringify(e), opts.dedup === false ? {} : { msgID: e.id }));
    await Promise.all(acks);
  }

  /** One batch message as the gateway sends it: unsigned events, one HMAC over the body in a header. */
  async publishBatch(events: WireEvent[], opts: { dedup?: boolean; sig?: string; body?: string; partition?: number } = {}): Promise<void> {
    const enc = encodeEventBatch(events.map(({ sig: _sig, ...e }) => e), this.eventKey);
    const h = headers();
    h.set(EVENT_BATCH_SIG_HEADER, opts.sig ?? enc.sig);
    const msgID = opts.dedup === false ? undefined : `batch:${events[0]?.id}:${events.length}`;
    await this.js.publish(this.names.gatewayEvents('gw-1', opts.partition ?? 0), opts.body ?? enc.body, { headers: h, ...(msgID ? { msgID } : {}) });
  }

  async publishRaw(subject: string, body: string | Uint8Array): Promise<void> {
    await this.js.publish(subject, body);
  }

  async waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (ok(v)) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting; last value ${JSON.stringify(v)}; ${await this.consumerState()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Messages delivered to the recorders' consumers and not acknowledged yet, over all of them. */
  async ackPending(): Promise<number> {
    const jsm = await jetstreamManager(this.nc);
    let n = 0;
    for await (const c of jsm.consumers.list(this.names.eventStream)) n += c.num_ack_pending;
    return n;
  }

  /** Consumer positions, for failure messages. */
  async consumerState(): Promise<string> {
    try {
      const jsm = await jetstreamManager(this.nc);
      const out: string[] = [];
      for await (const c of jsm.consumers.list(this.names.eventStream)) {
        out.push(`${c.name}: pending=${c.num_pending} ack_pending=${c.num_ack_pending} redelivered=${c.num_redelivered} waiting=${c.num_waiting}`);
      }
      return out.join(', ');
    } catch (err) {
      return `consumer state unavailable: ${(err as Error).message}`;
    }
  }

  async eventsOf(sessionId: string) {
    const r = await this.db.query(`SELECT id::text, seq, type, "prevHash", hash, data, time, identity, connection, gateway, "sessionId", position FROM "Event" WHERE chain = $1 ORDER BY seq`, [sessionId]);
    return r.rows;
  }

  async countFor(sessionIds: string[]): Promise<number> {
    const r = await this.db.query<{ n: string }>(`SELECT count(*) AS n FROM "Event" WHERE chain = ANY($1::text[])`, [sessionIds]);
    return Number(r.rows[0].n);
  }

  /** Stops every recorder started so far (between tests: the next one starts from a clean slate). */
  async stopRecorders(): Promise<void> {
    const rs = this.recorders.splice(0);
    await Promise.all(rs.map((r) => r.stop().catch(() => undefined)));
  }

  async teardown(): Promise<void> {
    await this.stopRecorders();
    const jsm = await jetstreamManager(this.nc);
    for (const s of [this.names.eventStream, this.names.deadLetterStream]) await jsm.streams.delete(s).catch(() => undefined);
    await this.nc.close();
    if (this.sessions.length) {
      await this.db.query(`DELETE FROM "Event" WHERE chain = ANY($1::text[])`, [this.sessions]);
      await this.db.query(`DELETE FROM "Session" WHERE id = ANY($1::text[])`, [this.sessions]);
    }
    await this.db.end();
  }
}

/** Recomputes a stored chain; returns the seq of the first bad row or null. */
export function brokenAt(rows: Array<{ id: string; seq: number; type: string; prevHash: string; hash: string; data: Record<string, unknown>; time: Date; identity: string | null; connection: string | null; gateway: string | null; sessionId: string | null }>): number | null {
  let prev = GENESIS_HASH;
  for (const r of rows) {
    const recomputed = chainedEventHash({ id: r.id, sessionId: r.sessionId, seq: r.seq, time: normaliseTime(r.time), type: r.type, identity: r.identity, connection: r.connection, gateway: r.gateway, data: r.data, prevHash: r.prevHash });
    if (r.prevHash !== prev || recomputed !== r.hash) return r.seq;
    prev = r.hash;
  }
  return null;
}
