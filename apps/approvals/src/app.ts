import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createPrismaClient, type PrismaClient } from '@portcullis/db';
import { APPROVALS_QUEUE, ControlEventPublisher, approvalSubjects, deriveKey, natsConnectOptions, natsNames } from '@portcullis/protocol';
import { pino, type Logger } from 'pino';
import { ApprovalStore } from './approval-store.js';
import { ApprovalsService } from './approvals.service.js';
import { DecisionSigner } from './decision-signer.js';
import type { ApprovalsEnv } from './env.js';
import { createApprovalsMetrics, type ApprovalsMetrics } from './metrics.js';

export interface ApprovalsAppOptions {
  log?: Logger;
  /** test isolation on a shared database: only expire approvals of connections with this name prefix */
  scopeConnectionPrefix?: string;
  webhookBackoffMs?: number;
  /** HMAC key of gateway messages; default deriveKey(master, 'event-signing'), which the api seals into snapshots as the event key */
  gatewayKey?: Buffer;
}

export interface ApprovalsApp {
  port: number;
  service: ApprovalsService;
  metrics: ApprovalsMetrics;
  db: PrismaClient;
  nc: NatsConnection;
  stop(): Promise<void>;
}

/** Starts the approvals app: queue worker, NATS handlers, expiry loop, health/metrics http. */
export async function startApprovalsApp(env: ApprovalsEnv, opts: ApprovalsAppOptions = {}): Promise<ApprovalsApp> {
  const log = opts.log ?? pino({ name: 'approvals', level: env.LOG_LEVEL });
  const metrics = createApprovalsMetrics();
  const names = natsNames(env.NATS_PREFIX);
  const subjects = approvalSubjects(env.NATS_PREFIX);
  const db = createPrismaClient(env.DATABASE_URL);
  await db.$queryRaw`SELECT 1`;
  const nc = await connect({ ...natsConnectOptions(env.NATS_URL), name: 'portcullis-approvals', maxReconnectAttempts: -1 });
  // Redis may be restarted at any time: the worker reconnects forever, Postgres keeps what matters.
  const redisOpts = { maxRetriesPerRequest: null, retryStrategy: (n: number) => Math.min(n * 100, 2000) } as const;
  const redis = new Redis(env.REDIS_URL, redisOpts);
  redis.on('error', (err) => log.debug({ err: err.message }, 'redis error'));

  const store = new ApprovalStore(db, opts.scopeConnectionPrefix ?? null);
  const js = jetstream(nc);
  const events = new ControlEventPublisher({
    js: () => js,
    manager: () => jetstreamManager(nc),
    names,
    key: deriveKey(env.PORTCULLIS_MASTER_KEY, 'event-signing'),
    hooks: { queued: (event, err) => log.warn({ err, eventId: event.id }, 'control event not published yet, will retry') },
  });
  events.start();
  const service = new ApprovalsService({
    store,
    signer: new DecisionSigner(db, env.PORTCULLIS_MASTER_KEY),
    nc,
    names,
    events,
    metrics,
    log,
    gatewayKey: opts.gatewayKey ?? deriveKey(env.PORTCULLIS_MASTER_KEY, 'event-signing'),
    webhook: {
      key: deriveKey(env.PORTCULLIS_MASTER_KEY, 'webhook'),
      apiUrl: env.APPROVALS_API_URL,
      attempts: env.APPROVALS_WEBHOOK_ATTEMPTS,
      timeoutMs: env.APPROVALS_WEBHOOK_TIMEOUT_MS,
      backoffMs: opts.webhookBackoffMs,
    },
    oneTimeTtlSeconds: env.APPROVALS_ONE_TIME_TTL_SECONDS,
  });

  const worker = new Worker(APPROVALS_QUEUE, async (job) => service.processJob(job.data), {
    connection: redis,
    prefix: env.APPROVALS_QUEUE_PREFIX,
    concurrency: 32,
  });
  worker.on('error', (err) => log.warn({ err: err.message }, 'approvals worker error'));
  worker.on('failed', (job, err) => log.warn({ jobId: job?.id, err: err.message }, 'approval job failed; bullmq retries it'));

  const handle = (what: string, fn: (m: import('@nats-io/transport-node').Msg) => Promise<void>) => (err: Error | null, m: import('@nats-io/transport-node').Msg) => {
    if (err) return void log.warn({ err: err.message }, `${what} subscription error`);
    fn(m).catch((e: unknown) => log.error({ err: e }, `${what} handler failed`));
  };
  const subs = [
    nc.subscribe(subjects.cancel, { callback: handle('cancel', (m) => service.handleCancel(m)) }),
    // queue group: with several approvals instances exactly one answers a consume request
    nc.subscribe(subjects.consume, { queue: 'portcullis-approvals', callback: handle('consume', (m) => service.handleConsume(m)) }),
  ];
  await nc.flush();

  let sweeping = false;
  const expiry = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    service.expireDue().catch((err: unknown) => log.error({ err }, 'expiry sweep failed')).finally(() => { sweeping = false; });
  }, env.APPROVALS_EXPIRY_INTERVAL_MS);

  const server = createHttpServer({ db, redis, nc, metrics, worker });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(env.APPROVALS_HTTP_PORT, env.APPROVALS_HTTP_HOST, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ port, queuePrefix: env.APPROVALS_QUEUE_PREFIX, natsPrefix: env.NATS_PREFIX }, 'approvals app started');

  let stopped = false;
  return {
    port, service, metrics, db, nc,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(expiry);
      await new Promise<void>((r) => server.close(() => r()));
      for (const s of subs) s.unsubscribe();
      await worker.close().catch(() => undefined);
      redis.disconnect();
      const unpublished = events.close();
      if (unpublished) log.error({ pending: unpublished }, 'control events not published at shutdown');
      await nc.drain().catch(() => undefined);
      await db.$disconnect();
    },
  };
}

function createHttpServer(d: { db: PrismaClient; redis: Redis; nc: NatsConnection; metrics: ApprovalsMetrics; worker: Worker }): Server {
  const timeout = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('timeout')), ms).unref())]);
  return createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: string, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    if (req.method !== 'GET') return send(405, JSON.stringify({ error: { code: 'method_not_allowed', message: 'GET only' } }));
    if (url === '/healthz') return send(200, JSON.stringify({ status: 'ok' }));
    if (url === '/readyz') {
      void (async () => {
        const checks: Record<string, string> = {};
        await Promise.all([
          timeout(d.db.$queryRaw`SELECT 1`, 2000).then(() => { checks.database = 'ok'; }, (e: Error) => { checks.database = e.message; }),
          timeout(d.redis.ping(), 2000).then(() => { checks.redis = 'ok'; }, (e: Error) => { checks.redis = e.message; }),
          timeout(d.nc.flush(), 2000).then(() => { checks.nats = 'ok'; }, (e: Error) => { checks.nats = e.message; }),
        ]);
        const ok = Object.values(checks).every((v) => v === 'ok');
        send(ok ? 200 : 503, JSON.stringify({ status: ok ? 'ready' : 'not ready', checks }));
      })();
      return;
    }
    if (url === '/metrics') {
      void d.metrics.registry.metrics().then((text) => send(200, text, d.metrics.registry.contentType));
      return;
    }
    send(404, JSON.stringify({ error: { code: 'not_found', message: `no route ${url}` } }));
  });
}
