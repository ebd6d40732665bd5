import { readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { generate as generateCert } from 'selfsigned';
import { natsConnectOptions, natsNames } from '@portcullis/protocol';
import { ConfigStore, type ActiveConfig } from './config/config-store.js';
import { readConfigPublicKeys, type GatewayEnv } from './env.js';
import { AuthFailureRecorder } from './events/auth-failure-recorder.js';
import { EventPublisher, ensureEventStream, setEventFlushInterval } from './events/event-publisher.js';
import { startHeartbeat } from './heartbeat.js';
import { startIdleCompaction } from './idle-compaction.js';
import { createHttpServer, listen } from './http/http-server.js';
import { GatewayMetrics } from './http/metrics.js';
import { createLogger, type Logger } from './logger.js';
import { createPolicyHooks } from './policy/policy-hooks.js';
import { loadPolicyLib, type PolicyLib } from './policy/policy-lib.js';
import { ALLOW_ALL_HOOKS, type SessionHooks } from './policy/session-hooks.js';
import { BufferBudget } from './postgres/buffer-budget.js';
import { CancelRegistry, sendUpstreamCancel } from './postgres/cancel-registry.js';
import { ClientSession, type SessionInfo } from './postgres/client-session.js';
import { fastLaneUnavailable, trimNativeHeap } from './postgres/fast-lane.js';
import { SideConnection } from './postgres/side-connection.js';
import type { ApprovalClient } from './approvals/approval-client.js';
import { SshListener } from './ssh/ssh-listener.js';
import { NO_POLICY, sshPolicyOf } from './ssh/ssh-policy.js';
import type { SshPolicy } from './ssh/ssh-policy.types.js';
import type { ResolvedPolicy } from './config/config-store.js';

export const GATEWAY_VERSION = '0.1.0';

/** How long a client's cancel socket stays open while another gateway of the pool may deliver its cancel. */
const RELAYED_CANCEL_WAIT_MS = 2000;

/**
 * Lets another component (the approvals engineer's) replace or wrap the policy hooks of each
 * session: receives the session and the default hooks, returns the hooks to use.
 */
export type HooksFactory = (session: SessionInfo, defaults: SessionHooks, gateway: Gateway) => SessionHooks;

export interface GatewayOptions {
  env: GatewayEnv;
  logger?: Logger;
  hooks?: HooksFactory;
  /** heartbeat interval (ms) */
  heartbeatMs?: number;
  /** replaces the SSH decisions of each session (tests of the transport without the classifier) */
  sshPolicy?: (policy: ResolvedPolicy | null) => SshPolicy;
}

/** One gateway worker: the Postgres listener, its config watch, events, cancels, health and metrics. */
export class Gateway {
  readonly env: GatewayEnv;
  readonly logger: Logger;
  readonly metrics = new GatewayMetrics();
  readonly cancels = new CancelRegistry();
  readonly sessions = new Set<ClientSession>();
  config!: ConfigStore;
  nc: NatsConnection | null = null;
  private publisher: EventPublisher | null = null;
  private authFailures: AuthFailureRecorder | null = null;
  private pgServer: Server | null = null;
  private httpServer: HttpServer | null = null;
  private tls: SecureContext | null = null;
  /** GATEWAY_FAST_LANE, and the native module loaded */
  private fastLane = false;
  private policyLib: PolicyLib | null = null;
  private stopHeartbeat: (() => void) | null = null;
  private stopIdleCompaction: (() => void) | null = null;
  /** sessions accepted since start (with the events published: the idle compaction's activity) */
  private accepted = 0;
  private cancelSub: Subscription | null = null;
  private hooksFactory: HooksFactory | null;
  /** the SSH listener (ssh/): its sessions, live config and shutdown */
  ssh: SshListener | null = null;
  /** set by installApprovals: SSH sessions request approvals through it */
  approvalClient: ApprovalClient | null = null;
  private readonly sshPolicy: ((policy: ResolvedPolicy | null) => SshPolicy) | null;
  private readonly startedAt = new Date().toISOString();
  pgPort = 0;
  httpPort = 0;

  constructor(opts: GatewayOptions) {
    this.env = opts.env;
    this.logger = opts.logger ?? createLogger(opts.env.LOG_LEVEL, { gateway: opts.env.GATEWAY_ID, pool: opts.env.GATEWAY_POOL });
    this.hooksFactory = opts.hooks ?? null;
    this.sshPolicy = opts.sshPolicy ?? null;
    this.heartbeatMs = opts.heartbeatMs ?? 5000;
    this.buffers = new BufferBudget(opts.env.GATEWAY_BUFFER_BYTES, (used) => this.metrics.bufferedBytes.set(used));
  }

  /** large messages in flight on the JavaScript relay, across every session (buffer-budget.ts) */
  readonly buffers: BufferBudget;

  private readonly heartbeatMs: number;

  get liveSessions(): number {
    let n = 0;
    for (const s of this.sessions) if (s.live && !s.isEnded) n++;
    return n + (this.ssh?.liveSessions ?? 0);
  }

  get id(): string {
    return this.env.GATEWAY_ID;
  }

  /** Installs a hooks factory after start (the approvals integration). */
  setHooksFactory(f: HooksFactory | null): void {
    this.hooksFactory = f;
  }

  async start(): Promise<void> {
    const env = this.env;
    this.tls = await this.loadTls();
    try {
      this.policyLib = await loadPolicyLib();
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'policy library failed to load; connections with a policy refuse sessions');
    }
    const trustedKeys = readConfigPublicKeys(env);
    if (typeof trustedKeys === 'string') throw new Error(`GATEWAY_CONFIG_PUBLIC_KEY: ${trustedKeys}`);
    this.config = new ConfigStore({
      prefix: env.NATS_PREFIX, pool: env.GATEWAY_POOL, poolKey: env.GATEWAY_POOL_KEY, trustedKeys, logger: this.logger, policyLib: this.policyLib,
      onRejected: (reason) => this.metrics.configRejected.inc({ reason }),
    });
    this.config.on('change', (c: ActiveConfig) => {
      this.metrics.configRevision.set(c.revision);
      // live sessions answer to the new config now, not at their next login
      for (const session of [...this.sessions]) session.configChanged(c);
      this.ssh?.configChanged(c);
    });
    this.nc = await connect({ ...natsConnectOptions(env.NATS_URL), name: `gateway-${env.GATEWAY_ID}`, maxReconnectAttempts: -1, reconnectTimeWait: 1000 });
    void this.watchNatsStatus(this.nc);
    setEventFlushInterval(env.GATEWAY_EVENT_FLUSH_MS);
    this.publisher = new EventPublisher(this.nc, env.NATS_PREFIX, this.logger, 5000, env.GATEWAY_ID);
    this.metrics.eventCounts = () => this.publisher?.counts ?? null;
    this.authFailures = new AuthFailureRecorder({ gatewayId: env.GATEWAY_ID, logger: this.logger, publisher: () => this.publisher, eventKey: () => this.config.current?.eventKey ?? null });
    this.metrics.parserHealth = () => this.policyLib?.parserHealth() ?? null;
    void this.ensureStream();
    this.config.start(this.nc);
    this.subscribeCancels(this.nc);

    const laneMissing = fastLaneUnavailable();
    this.fastLane = env.GATEWAY_FAST_LANE && !laneMissing;
    if (env.GATEWAY_FAST_LANE && laneMissing) this.logger.warn({ reason: laneMissing }, 'fast lane unavailable: every session is relayed in JavaScript (slower, same behaviour)');
    this.pgServer = createServer({ pauseOnConnect: false, noDelay: true }, (socket) => this.accept(socket));
    this.pgServer.on('error', (err) => this.logger.error({ err: err.message }, 'postgres listener error'));
    await new Promise<void>((resolve, reject) => {
      this.pgServer!.once('error', reject);
      this.pgServer!.listen(env.GATEWAY_PG_PORT, env.GATEWAY_PG_HOST, () => resolve());
    });
    this.pgPort = (this.pgServer.address() as AddressInfo).port;
    await this.startSsh();
    this.httpServer = createHttpServer(this.metrics, {
      ready: () => {
        const c = this.config.current;
        // without a working SQL parser every policy-bound statement is refused: not ready
        const parser = this.policyLib?.parserHealth() ?? null;
        const detail: Record<string, unknown> = { configRevision: c?.revision ?? null, nats: this.nc?.isClosed() === false && this.natsConnected };
        if (parser) detail.parser = { healthy: parser.healthy, ...(parser.reason ? { reason: parser.reason } : {}), restarts: parser.restarts };
        return { ready: !!c && (parser?.healthy ?? true), detail };
      },
    });
    this.httpPort = await listen(this.httpServer, env.GATEWAY_HTTP_PORT, env.GATEWAY_HTTP_HOST);
    this.stopHeartbeat = startHeartbeat(
      this.nc,
      env.NATS_PREFIX,
      {
        id: env.GATEWAY_ID,
        pool: env.GATEWAY_POOL,
        version: GATEWAY_VERSION,
        address: env.GATEWAY_PUBLIC_ADDRESS ?? null,
        startedAt: this.startedAt,
        liveSessions: () => this.liveSessions,
        configRevision: () => this.config.current?.revision ?? null,
      },
      this.heartbeatMs,
    );
    if (env.GATEWAY_IDLE_COMPACTION_MS > 0) {
      this.stopIdleCompaction = startIdleCompaction({
        activity: () => this.accepted + (this.publisher?.counts.events ?? 0),
        trimNativeHeap,
        intervalMs: env.GATEWAY_IDLE_COMPACTION_MS,
        logger: this.logger,
        onCompact: () => this.metrics.idleCompactions.inc(),
      });
    }
    this.logger.info({ pgPort: this.pgPort, sshPort: this.sshPort, httpPort: this.httpPort, pool: env.GATEWAY_POOL, tls: !!this.tls, allowPlaintext: env.GATEWAY_ALLOW_PLAINTEXT, fastLane: this.fastLane }, 'gateway listening');
  }

  sshPort = 0;

  private async startSsh(): Promise<void> {
    const env = this.env;
    const ssh = new SshListener({
      gatewayId: env.GATEWAY_ID,
      pool: env.GATEWAY_POOL,
      logger: this.logger,
      metrics: this.metrics,
      poolKey: env.GATEWAY_POOL_KEY,
      config: () => this.config.current,
      publisher: () => this.publisher,
      authFailed: (f, connection) => this.authFailures?.report(f, connection),
      recordingAvailable: () => this.natsConnected && !!this.publisher,
      policyFor: (policy) => this.sshPolicy?.(policy) ?? (policy ? sshPolicyOf(policy) : NO_POLICY),
      approvals: () => this.approvalClient,
      loginGraceMs: env.GATEWAY_SSH_LOGIN_GRACE_MS,
      maxAuthFailures: env.GATEWAY_SSH_MAX_AUTH_FAILURES,
    });
    try {
      this.sshPort = await ssh.start(env.GATEWAY_SSH_PORT, env.GATEWAY_SSH_HOST);
      this.ssh = ssh;
    } catch (err) {
      // Postgres sessions do not depend on it: the gateway serves on, and says so loudly
      this.logger.error({ err: (err as Error).message, port: env.GATEWAY_SSH_PORT }, 'SSH listener could not start; SSH sessions are unavailable on this gateway');
    }
  }

  private async ensureStream(): Promise<void> {
    for (let attempt = 0; this.nc && !this.nc.isClosed(); attempt++) {
      try {
        await ensureEventStream(this.nc, this.env.NATS_PREFIX);
        return;
      } catch (err) {
        if (attempt % 10 === 0) this.logger.warn({ err: (err as Error).message }, 'cannot ensure the event stream; retrying');
        await new Promise((r) => setTimeout(r, 1000).unref());
      }
    }
  }

  /** false between a NATS disconnect and the reconnect: sessions that require recording are refused at once */
  private natsConnected = true;

  private async watchNatsStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.natsConnected = false;
        this.logger.warn('NATS disconnected; serving on the last config; sessions that require recording are ended');
        for (const session of [...this.sessions]) session.recordingLost();
        this.ssh?.recordingLost();
      } else if (s.type === 'reconnect') {
        this.natsConnected = true;
        this.logger.info('NATS reconnected');
      }
    }
    this.natsConnected = false; // closed
  }

  private subscribeCancels(nc: NatsConnection): void {
    const subject = natsNames(this.env.NATS_PREFIX).cancel(this.env.GATEWAY_POOL);
    this.cancelSub = nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        try {
          const body = msg.json<{ pid: number; secret: string; from: string }>();
          if (body.from === this.id || typeof body.pid !== 'number' || typeof body.secret !== 'string') return;
          const target = this.cancels.lookup(body.pid, Buffer.from(body.secret, 'base64'));
          if (target) {
            this.logger.info({ pid: body.pid, from: body.from }, 'cancel relayed from another gateway');
            // answered once delivered: the asking gateway closes its client's cancel socket only then
            void sendUpstreamCancel(target).then(() => {
              if (msg.reply) msg.respond('delivered');
            });
          }
        } catch {
          // not ours to parse
        }
      },
    });
  }

  /** Settles when the gateway holding the key answered that it delivered the cancel, or after RELAYED_CANCEL_WAIT_MS. */
  private async relayCancel(pid: number, secret: Buffer): Promise<void> {
    if (!this.nc || this.nc.isClosed()) return;
    try {
      const body = JSON.stringify({ pid, secret: secret.toString('base64'), from: this.id });
      await this.nc.request(natsNames(this.env.NATS_PREFIX).cancel(this.env.GATEWAY_POOL), body, { timeout: RELAYED_CANCEL_WAIT_MS });
    } catch {
      // no gateway knows the key (or none answered in time): cancels are best effort, as in Postgres
    }
  }

  private async loadTls(): Promise<SecureContext> {
    if (this.env.GATEWAY_TLS_CERT && this.env.GATEWAY_TLS_KEY) {
      return createSecureContext({ cert: readFileSync(this.env.GATEWAY_TLS_CERT), key: readFileSync(this.env.GATEWAY_TLS_KEY) });
    }
    const pems = await generateCert([{ name: 'commonName', value: 'portcullis-gateway' }], { keySize: 2048, algorithm: 'sha256' } as never);
    this.logger.info('using a self-signed TLS certificate (set GATEWAY_TLS_CERT/GATEWAY_TLS_KEY in production)');
    return createSecureContext({ cert: pems.cert, key: pems.private });
  }

  private accept(socket: Socket): void {
    this.accepted++;
    const session = new ClientSession(socket, {
      gatewayId: this.id,
      pool: this.env.GATEWAY_POOL,
      logger: this.logger,
      metrics: this.metrics,
      config: () => this.config.current,
      tls: this.tls,
      allowPlaintext: this.env.GATEWAY_ALLOW_PLAINTEXT,
      fastLane: this.fastLane,
      endAtExpiry: this.env.GATEWAY_END_SESSIONS_AT_EXPIRY,
      cancels: this.cancels,
      buffers: { process: this.buffers, sessionBytes: this.env.GATEWAY_SESSION_BUFFER_BYTES },
      relayCancel: (pid, secret) => this.relayCancel(pid, secret),
      publisher: () => this.publisher,
      authFailed: (f, connection) => this.authFailures?.report(f, connection),
      recordingAvailable: () => this.natsConnected && !!this.publisher,
      hooksFor: (info) => this.hooksFor(info),
      onEnd: (s) => this.sessions.delete(s),
    });
    this.sessions.add(session);
    void session.run();
  }

  private hooksFor(info: SessionInfo): SessionHooks {
    let hooks: SessionHooks = ALLOW_ALL_HOOKS;
    if (info.policy && this.policyLib) {
      hooks = createPolicyHooks({
        // read at each statement: configChanged may move the session to a newer version of its policy
        policy: () => info.policy!,
        lib: this.policyLib,
        maskingKey: info.config.maskingKey,
        side: new SideConnection(info.openSide),
        logger: this.logger.child({ session: info.sessionId }),
        onStatementTooComplex: () => this.metrics.statementsTooComplex.inc(),
      });
    }
    return this.hooksFactory ? this.hooksFactory(info, hooks, this) : hooks;
  }

  async stop(): Promise<void> {
    this.authFailures?.stop();
    this.stopHeartbeat?.();
    this.stopIdleCompaction?.();
    const sshStopped = this.ssh?.stop();
    await new Promise<void>((resolve) => (this.pgServer ? this.pgServer.close(() => resolve()) : resolve()));
    for (const s of [...this.sessions]) s.shutdown();
    await sshStopped;
    await Promise.allSettled([...this.sessions].map((s) => s.flushEvents()));
    await new Promise<void>((resolve) => (this.httpServer ? this.httpServer.close(() => resolve()) : resolve()));
    this.httpServer?.closeAllConnections?.();
    await this.config?.stop();
    this.cancelSub?.unsubscribe();
    if (this.nc && !this.nc.isClosed()) await this.nc.drain().catch(() => this.nc?.close());
  }
}
