import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { natsConnectOptions, type AuthFailure } from '@portcullis/protocol';
import { ApprovalClient } from './approvals/approval-client.js';
import { approvalPolicyOf, createCommandApprovals, type ApprovalWording, type CommandApprovals } from './approvals/command-approvals.js';
import { ConfigStore, type ActiveConfig } from './config/config-store.js';
import { admit } from './core/access.js';
import { BufferBudget } from './core/buffer-budget.js';
import { CommandAnalysis } from './core/command-analysis.js';
import { loadPolicyLib, type PolicyLib } from './core/policy-lib.js';
import { startRecording } from './core/session-recording.js';
import { SessionRegistry } from './core/session-registry.js';
import type { AccessRequest, ProtocolModule, ProtocolName, SessionCore, SessionGrant } from './core/session-core.types.js';
import { readConfigPublicKeys, type GatewayEnv } from './env.js';
import { AuthFailureRecorder } from './events/auth-failure-recorder.js';
import { EventPublisher, ensureEventStream, setEventFlushInterval, type SessionRecorder } from './events/event-publisher.js';
import { startHeartbeat } from './heartbeat.js';
import { startIdleCompaction } from './idle-compaction.js';
import { createHttpServer, listen } from './http/http-server.js';
import { GatewayMetrics } from './http/metrics.js';
import { createLogger, type Logger } from './logger.js';
import { PostgresModule, type HooksFactory } from './postgres/postgres-module.js';
import { SshModule } from './ssh/ssh-module.js';
import type { CommandPolicyOptions } from './terminal/command-policy.js';
import { KubernetesModule } from './kubernetes/kube-module.js';

export const GATEWAY_VERSION = '0.1.0';

/** Approvals of held commands (BullMQ queue + NATS decisions), built with the gateway. */
export interface ApprovalsSettings {
  /** default env REDIS_URL */
  redisUrl?: string;
  /** BullMQ prefix; default env APPROVALS_QUEUE_PREFIX or `bull` */
  queuePrefix?: string;
  /** how long past a policy's timeout the gateway waits before it fails closed */
  graceSeconds?: number;
}

export interface GatewayOptions {
  env: GatewayEnv;
  logger?: Logger;
  /** test seam: replaces or wraps the SQL policy hooks of each Postgres session */
  hooks?: HooksFactory;
  /** approvals of held commands; absent: off (commands needing approval are refused) */
  approvals?: ApprovalsSettings;
  /** heartbeat interval (ms) */
  heartbeatMs?: number;
  /** replaces the SSH decisions of each session (tests of the transport without the classifier) */
  sshPolicy?: CommandPolicyOptions['sshPolicy'];
}

/**
 * The protocol modules this build has. GATEWAY_PROTOCOLS picks which of them start. A new protocol
 * is one entry here (and its listener's env: GATEWAY_<NAME>_PORT/HOST); the core does not change.
 * `essential`: the gateway does not start without it; another module that cannot listen is logged
 * and left out (the others serve on).
 */
const PROTOCOL_MODULES: Partial<Record<ProtocolName, { essential: boolean; make(opts: GatewayOptions): ProtocolModule }>> = {
  postgres: { essential: true, make: (opts) => new PostgresModule({ ...(opts.hooks ? { hooks: opts.hooks } : {}) }) },
  ssh: { essential: false, make: (opts) => new SshModule({ ...(opts.sshPolicy ? { sshPolicy: opts.sshPolicy } : {}) }) },
  kubernetes: { essential: false, make: (opts) => new KubernetesModule({ ...(opts.sshPolicy ? { sshPolicy: opts.sshPolicy } : {}) }) },
};

/**
 * One gateway worker: the session core (config watch, credential checks, events, approvals, session
 * registry, metrics, health) and the protocol modules that serve clients with it (SessionCore).
 */
export class Gateway implements SessionCore {
  readonly env: GatewayEnv;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  readonly sessions: SessionRegistry;
  /** large messages in flight, across every session (core/buffer-budget.ts) */
  readonly buffers: BufferBudget;
  /** long shell texts analysed in a worker thread (core/command-analysis.ts) */
  readonly commandAnalysis: CommandAnalysis;
  config!: ConfigStore;
  nc: NatsConnection | null = null;
  policyLib: PolicyLib | null = null;
  /** the approvals client, when approvals are on (GatewayOptions.approvals) */
  approvals: ApprovalClient | null = null;
  private readonly modules: ProtocolModule[] = [];
  private readonly addresses = new Map<ProtocolName, AddressInfo>();
  private publisher: EventPublisher | null = null;
  private authFailures: AuthFailureRecorder | null = null;
  private httpServer: HttpServer | null = null;
  private stopHeartbeat: (() => void) | null = null;
  private stopIdleCompaction: (() => void) | null = null;
  private readonly startedAt = new Date().toISOString();
  private readonly heartbeatMs: number;
  httpPort = 0;

  constructor(private readonly opts: GatewayOptions) {
    this.env = opts.env;
    this.metrics = new GatewayMetrics(false, opts.env.GATEWAY_PROTOCOLS.filter((p) => PROTOCOL_MODULES[p]));
    this.logger = opts.logger ?? createLogger(opts.env.LOG_LEVEL, { gateway: opts.env.GATEWAY_ID, pool: opts.env.GATEWAY_POOL });
    this.heartbeatMs = opts.heartbeatMs ?? 5000;
    this.buffers = new BufferBudget(opts.env.GATEWAY_BUFFER_BYTES, (used) => this.metrics.bufferedBytes.set(used));
    this.sessions = new SessionRegistry({
      config: () => this.config?.current ?? null,
      logger: this.logger,
      endAtExpiry: opts.env.GATEWAY_END_SESSIONS_AT_EXPIRY,
      onTerminated: (session, reason) => this.metrics.sessionTerminated(session.protocol, reason),
    });
    this.commandAnalysis = new CommandAnalysis({ timeoutMs: opts.env.GATEWAY_COMMAND_ANALYSIS_TIMEOUT_MS });
    this.metrics.commandAnalysisCounts = () => this.commandAnalysis.counts;
  }

  get id(): string {
    return this.env.GATEWAY_ID;
  }

  get gatewayId(): string {
    return this.env.GATEWAY_ID;
  }

  get pool(): string {
    return this.env.GATEWAY_POOL;
  }

  get nats(): NatsConnection {
    if (!this.nc) throw new Error('the gateway is not started');
    return this.nc;
  }

  /** sessions relaying now, every protocol */
  get liveSessions(): number {
    return this.sessions.liveCount;
  }

  /** The port a protocol module listens on (0: not started). */
  portOf(protocol: ProtocolName): number {
    return this.addresses.get(protocol)?.port ?? 0;
  }

  get pgPort(): number {
    return this.portOf('postgres');
  }

  get sshPort(): number {
    return this.portOf('ssh');
  }

  get kubePort(): number {
    return this.portOf('kubernetes');
  }

  /** A started module by protocol (tests reach into it). */
  moduleOf(protocol: ProtocolName): ProtocolModule | null {
    return this.modules.find((m) => m.protocol === protocol) ?? null;
  }

  // ---------------------------------------------------------------------------------------------
  // SessionCore

  currentConfig(): ActiveConfig | null {
    return this.config?.current ?? null;
  }

  authenticate(req: AccessRequest): Promise<SessionGrant> {
    return admit(req, { config: () => this.config.current, authFailed: (f, connection, protocol) => this.authFailed(f, connection, protocol) });
  }

  authFailed(f: Omit<AuthFailure, 'surface'>, connection: string | null, protocol: string): void {
    this.metrics.errors.inc({ kind: 'auth', protocol });
    this.authFailures?.report(f, connection);
  }

  startRecording(sessionId: string, grant: SessionGrant, data: Record<string, unknown>, onRecordingFailed: (err: Error) => void, logger: Logger): Promise<SessionRecorder> {
    return startRecording(
      { gatewayId: this.id, pool: this.pool, metrics: this.metrics, publisher: () => this.publisher, recordingAvailable: () => this.recordingAvailable() },
      sessionId, grant, data, onRecordingFailed, logger,
    );
  }

  approvalsFor(sessionId: string, grant: SessionGrant, recorder: SessionRecorder | null, signal: AbortSignal, logger: Logger, wording?: ApprovalWording): CommandApprovals | null {
    if (!this.approvals) return null;
    return createCommandApprovals({
      client: this.approvals,
      sessionId,
      identity: grant.claims.sub,
      connection: grant.connection.name,
      gatewayId: this.id,
      pool: this.pool,
      policy: approvalPolicyOf(grant.policy),
      mode: grant.claims.amode ?? grant.connection.approvalMode,
      signal,
      ...(wording ? { wording } : {}),
      event: (type, data) => recorder?.emit(type, data),
      log: logger,
    });
  }

  recordingAvailable(): boolean {
    return this.natsConnected && !!this.publisher;
  }

  // ---------------------------------------------------------------------------------------------

  async start(): Promise<void> {
    const env = this.env;
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
      this.sessions.configChanged(c);
      for (const m of this.modules) m.configChanged?.(c);
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
    if (this.opts.approvals) await this.startApprovals(this.opts.approvals, this.nc);

    for (const protocol of env.GATEWAY_PROTOCOLS) {
      const entry = PROTOCOL_MODULES[protocol];
      if (!entry) {
        this.logger.warn({ protocol }, 'this build has no module for a protocol in GATEWAY_PROTOCOLS; not served');
        continue;
      }
      const module = entry.make(this.opts);
      try {
        this.addresses.set(protocol, await module.listen(this));
      } catch (err) {
        if (entry.essential) throw err;
        this.logger.error({ protocol, err: (err as Error).message }, 'a protocol listener could not start; its sessions are unavailable on this gateway');
        continue;
      }
      this.modules.push(module);
    }
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
        // sessions, events and bytes: a bulk transfer (scp) publishes no events while it runs
        activity: () => this.sessions.accepted + this.sessions.bytesRelayed + (this.publisher?.counts.events ?? 0),
        trimNativeHeap: () => this.modules.reduce((trimmed, m) => (m.compact?.() ?? false) || trimmed, false),
        intervalMs: env.GATEWAY_IDLE_COMPACTION_MS,
        logger: this.logger,
        onCompact: () => this.metrics.idleCompactions.inc(),
      });
    }
    const ports = Object.fromEntries([...this.addresses].map(([p, a]) => [p, a.port]));
    this.logger.info({ pgPort: this.pgPort, ports, httpPort: this.httpPort, pool: env.GATEWAY_POOL }, 'gateway listening');
  }

  private async startApprovals(settings: ApprovalsSettings, nc: NatsConnection): Promise<void> {
    const client = new ApprovalClient({
      nc,
      natsPrefix: this.env.NATS_PREFIX,
      redisUrl: settings.redisUrl ?? this.env.REDIS_URL,
      queuePrefix: settings.queuePrefix ?? process.env.APPROVALS_QUEUE_PREFIX ?? 'bull',
      verificationKeys: () => this.config.current?.snapshot.verificationKeys ?? [],
      gatewayKey: () => this.config.current?.eventKey ?? null,
      log: this.logger.child({ component: 'approvals' }),
      registry: this.metrics.registry,
      ...(settings.graceSeconds !== undefined ? { graceSeconds: settings.graceSeconds } : {}),
    });
    await client.start();
    this.approvals = client;
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
        this.sessions.recordingLost();
      } else if (s.type === 'reconnect') {
        this.natsConnected = true;
        this.logger.info('NATS reconnected');
      }
    }
    this.natsConnected = false; // closed
  }

  async stop(): Promise<void> {
    // held approvals are cancelled first: their sessions end with this gateway
    await this.approvals?.close();
    this.authFailures?.stop();
    this.stopHeartbeat?.();
    this.stopIdleCompaction?.();
    // every listener stops accepting at once (ProtocolModule.close), then the core ends the live sessions
    const closing = this.modules.map((m) => m.close());
    await this.sessions.shutdown();
    await Promise.allSettled(closing);
    await this.commandAnalysis.close();
    await new Promise<void>((resolve) => (this.httpServer ? this.httpServer.close(() => resolve()) : resolve()));
    this.httpServer?.closeAllConnections?.();
    await this.config?.stop();
    if (this.nc && !this.nc.isClosed()) await this.nc.drain().catch(() => this.nc?.close());
  }
}
