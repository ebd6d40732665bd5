import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import pg from 'pg';
import { pino, type Logger } from 'pino';
import { CONTROL_CHAIN, EVENT_PARTITIONS, GENESIS_HASH, deriveKey, natsConnectOptions, natsNames, type NatsNames } from '@portcullis/protocol';
import { ChainWriter, type ChainHead } from './chain-writer.js';
import { Checkpointer, checkpointKey, type CheckpointKey } from './checkpoints.js';
import type { RecorderEnv } from './env.js';
import { EventConsumer, type BatchReport } from './event-consumer.js';
import { RecorderHttpServer } from './http-server.js';
import { RecorderMetrics } from './metrics.js';
import { RetentionJob, type RetentionResult } from './retention.js';
import { ensureConsumer, ensureStreams } from './streams.js';

export interface RecorderOptions {
  logger?: Logger;
  /** serve healthz/readyz/metrics (default true) */
  http?: boolean;
  /** collect Node default metrics into this recorder's registry (default false; main sets it) */
  defaultMetrics?: boolean;
}

/**
 * The recorder: a durable JetStream consumer that chains events into Postgres, plus periodic
 * signed checkpoints, retention, and a small HTTP surface. `start()`/`stop()` serve both
 * main.ts and in-process tests and benchmarks.
 */
export class Recorder {
  readonly metrics: RecorderMetrics;
  readonly names: NatsNames;
  readonly logger: Logger;
  readonly checkpointKey: CheckpointKey;
  private nc: NatsConnection | null = null;
  private pool: pg.Pool | null = null;
  private consumer: EventConsumer | null = null;
  private checkpointer: Checkpointer | null = null;
  private retention: RetentionJob | null = null;
  private http: RecorderHttpServer | null = null;
  private timers: NodeJS.Timeout[] = [];
  private readonly batchListeners = new Set<(r: BatchReport) => void>();
  private httpPort = 0;

  constructor(
    readonly env: RecorderEnv,
    private readonly opts: RecorderOptions = {},
  ) {
    this.logger = opts.logger ?? pino({ level: env.LOG_LEVEL, base: { app: 'recorder' } });
    this.metrics = new RecorderMetrics(opts.defaultMetrics ?? false);
    this.names = natsNames(env.NATS_PREFIX);
    this.checkpointKey = checkpointKey(env.PORTCULLIS_MASTER_KEY);
  }

  /** Port of the HTTP server (after start). */
  get port(): number {
    return this.httpPort;
  }

  /** Called after every committed batch (benchmarks, tests). */
  onBatch(listener: (r: BatchReport) => void): () => void {
    this.batchListeners.add(listener);
    return () => this.batchListeners.delete(listener);
  }

  async start(): Promise<void> {
    const { env, logger } = this;
    this.pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 4 });
    this.pool.on('error', (err) => logger.warn({ err }, 'idle Postgres connection failed'));
    this.nc = await connect({ ...natsConnectOptions(env.NATS_URL), name: `recorder-${env.RECORDER_CONSUMER}`, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
    void this.watchNats(this.nc);
    const jsm = await jetstreamManager(this.nc);
    await ensureStreams(jsm, this.names);
    const durables = this.ownedConsumers();
    for (const d of durables) {
      await ensureConsumer(jsm, this.names.eventStream, d.filter, {
        durable: d.name,
        ackWaitSeconds: env.RECORDER_ACK_WAIT_SECONDS,
        maxAckPending: Math.max(env.RECORDER_BATCH * 20, 10_000),
      });
    }

    this.checkpointer = new Checkpointer(this.pool, this.checkpointKey, this.metrics, logger);
    this.retention = new RetentionJob(this.pool, env.RETENTION_DAYS, this.metrics, logger);
    this.consumer = new EventConsumer({
      nc: this.nc,
      js: jetstream(this.nc),
      names: this.names,
      durables,
      writer: new ChainWriter(this.pool),
      eventKey: deriveKey(env.PORTCULLIS_MASTER_KEY, 'event-signing'),
      metrics: this.metrics,
      logger,
      batchSize: env.RECORDER_BATCH,
      batchBytes: env.RECORDER_BATCH_BYTES,
      gapSeconds: env.RECORDER_GAP_SECONDS,
      ackWaitSeconds: env.RECORDER_ACK_WAIT_SECONDS,
      onBatch: (r) => {
        if (r.heads.size) this.checkpointer?.noteHeads(r.heads);
        for (const l of this.batchListeners) l(r);
      },
    });
    await this.consumer.start();

    this.every(env.CHECKPOINT_SECONDS * 1000, () => this.checkpoint());
    if (env.RETENTION_DAYS > 0) {
      void this.runRetention().catch((err: unknown) => logger.error({ err }, 'retention failed'));
      this.every(env.RETENTION_INTERVAL_SECONDS * 1000, () => this.runRetention());
    }
    if (this.opts.http ?? true) {
      this.http = new RecorderHttpServer({
        registry: this.metrics.registry,
        ready: () => this.ready(),
        checkpointKey: () => this.checkpointKey.jwk,
        logger,
      });
      this.httpPort = await this.http.listen(env.RECORDER_HTTP_PORT, env.RECORDER_HTTP_HOST);
    }
    logger.info({ stream: this.names.eventStream, consumers: durables.map((d) => d.name), shard: `${env.RECORDER_SHARD.index}/${env.RECORDER_SHARD.count}`, port: this.httpPort }, 'recorder started');
  }

  /**
   * The durable consumers of this shard: one per event partition it owns (sessions are hashed to
   * partitions by the publisher, so every session's events come through one of them, in order),
   * and on shard 0 the control-plane events and the subjects of publishers that predate
   * partitions (a gateway of the previous version during a rolling upgrade).
   */
  private ownedConsumers(): { name: string; filter: string; maxBytes: number }[] {
    const { env, names } = this;
    const { index, count } = env.RECORDER_SHARD;
    const prefix = env.RECORDER_CONSUMER;
    const partitions = Array.from({ length: EVENT_PARTITIONS }, (_, p) => p).filter((p) => p % count === index);
    if (!partitions.length) this.logger.warn({ shard: `${index}/${count}`, partitions: EVENT_PARTITIONS }, 'more recorder shards than event partitions: this one owns none');
    // Bounded by bytes: a message may be one event or a batch of hundreds; the partitions share the budget.
    const budget = Math.max(env.RECORDER_BATCH_BYTES * 4, 4 * 1024 * 1024);
    const out = partitions.map((p) => ({ name: `${prefix}-p${p}`, filter: names.partitionEvents(p), maxBytes: Math.max(Math.floor(budget / partitions.length), 1024 * 1024) }));
    if (index === 0) {
      const small = 1024 * 1024;
      out.push({ name: `${prefix}-control`, filter: names.controlEvents, maxBytes: small });
      for (const [name, filter] of Object.entries(names.unpartitionedEvents)) out.push({ name: `${prefix}-${name}`, filter, maxBytes: small });
    }
    return out;
  }

  /** Writes a signed checkpoint of the chains changed since the last one (null if none changed). */
  checkpoint(): Promise<string | null> {
    return this.checkpointer?.checkpoint() ?? Promise.resolve(null);
  }

  async runRetention(now?: Date): Promise<RetentionResult> {
    if (!this.retention) return { sessions: 0, events: 0 };
    const r = await this.retention.run(now);
    if (r.sessions) this.checkpointer?.noteHeads(new Map<string, ChainHead>([[CONTROL_CHAIN, { seq: 0, hash: GENESIS_HASH }]]));
    return r;
  }

  async ready(): Promise<{ ok: boolean; checks: Record<string, string> }> {
    const checks: Record<string, string> = {};
    try {
      await this.pool!.query('SELECT 1');
      checks.postgres = 'ok';
    } catch (err) {
      checks.postgres = (err as Error).message;
    }
    try {
      if (!this.nc || this.nc.isClosed()) throw new Error('closed');
      await Promise.race([this.nc.flush(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 1000).unref())]);
      checks.nats = 'ok';
    } catch (err) {
      checks.nats = (err as Error).message;
    }
    return { ok: Object.values(checks).every((v) => v === 'ok'), checks };
  }

  /**
   * Graceful stop: no new pulls, the batch in hand is committed and acked, buffered messages are
   * handed back, a last checkpoint is written.
   */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.consumer?.stop();
    this.consumer = null;
    await this.checkpoint().catch((err: unknown) => this.logger.warn({ err }, 'final checkpoint failed'));
    await this.http?.close();
    this.http = null;
    if (this.nc) {
      await this.nc.drain().catch(() => undefined);
      this.nc = null;
    }
    await this.pool?.end();
    this.pool = null;
    this.logger.info('recorder stopped');
  }

  /**
   * Crash-like stop for tests: the NATS connection and the database pool are dropped without
   * committing or acknowledging anything in flight (JetStream redelivers after ack_wait).
   */
  async kill(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    const nc = this.nc;
    this.nc = null;
    await nc?.close().catch(() => undefined);
    await this.http?.close();
    this.http = null;
    void this.consumer?.stop().catch(() => undefined);
    this.consumer = null;
    this.checkpointer = null;
    this.retention = null;
    const pool = this.pool;
    this.pool = null;
    void pool?.end().catch(() => undefined);
  }

  private every(ms: number, fn: () => Promise<unknown>): void {
    const t = setInterval(() => {
      fn().catch((err: unknown) => this.logger.error({ err }, 'periodic task failed'));
    }, ms);
    t.unref();
    this.timers.push(t);
  }

  private async watchNats(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') this.logger.warn({ status: s.type }, 'NATS connection status');
    }
  }
}
