import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ProtocolName } from '../core/session-core.types.js';

/** Prometheus metrics of one gateway (own registry: several gateways can live in one test process). */
export class GatewayMetrics {
  readonly registry = new Registry();
  // Session metrics carry `protocol` (postgres, ssh, kubernetes): counted through sessionOutcome,
  // sessionLive and sessionTerminated below, which take it, so no protocol counts without it.
  readonly liveSessions = new Gauge({ name: 'portcullis_gateway_live_sessions', help: 'Client sessions currently open, by protocol', labelNames: ['protocol'] as const, registers: [this.registry] });
  readonly sessions = new Counter({
    name: 'portcullis_gateway_sessions_total',
    help: 'Client sessions by outcome (ok = authenticated and connected upstream; otherwise why it was refused) and protocol',
    labelNames: ['outcome', 'protocol'] as const,
    registers: [this.registry],
  });

  /** A session's login ended: `ok` (authenticated, connected upstream) or why it was refused. */
  sessionOutcome(protocol: ProtocolName, outcome: string): void {
    this.sessions.inc({ outcome, protocol });
  }

  /** A session started relaying (+1) or a relaying session ended (-1). */
  sessionLive(protocol: ProtocolName, delta: 1 | -1): void {
    this.liveSessions.inc({ protocol }, delta);
  }

  /** The gateway ended a live session on its own (config change, expiry, lost recording). */
  sessionTerminated(protocol: ProtocolName, reason: string): void {
    this.sessionsTerminated.inc({ reason, protocol });
  }
  /**
   * Hot-path counts (per chunk, per statement) add to plain numbers and reach the counters when
   * they are scraped: a labelled prom-client inc() hashes its labels on every call.
   */
  private readonly pendingBytes = { in: 0, out: 0 };
  private readonly pendingDecisions = new Map<string, number>();
  readonly bytes = new Counter({
    name: 'portcullis_gateway_bytes_total',
    help: 'Bytes relayed, by direction',
    labelNames: ['direction'] as const,
    registers: [this.registry],
    collect: () => this.flushHotCounts(),
  });
  readonly decisions = new Counter({
    name: 'portcullis_gateway_decisions_total',
    help: 'Policy decisions by action',
    labelNames: ['action'] as const,
    registers: [this.registry],
    collect: () => this.flushHotCounts(),
  });

  /** Bytes relayed (cheap: see pendingBytes). */
  countBytes(direction: 'in' | 'out', n: number): void {
    this.pendingBytes[direction] += n;
  }

  /** One policy decision (cheap: see pendingBytes). */
  countDecision(action: string): void {
    this.pendingDecisions.set(action, (this.pendingDecisions.get(action) ?? 0) + 1);
  }

  private flushHotCounts(): void {
    for (const d of ['in', 'out'] as const) {
      if (this.pendingBytes[d] > 0) this.bytes.inc({ direction: d }, this.pendingBytes[d]);
      this.pendingBytes[d] = 0;
    }
    for (const [action, n] of this.pendingDecisions) this.decisions.inc({ action }, n);
    this.pendingDecisions.clear();
  }
  /** Set by the gateway: the event publisher's running totals, read when scraped. */
  eventCounts: () => { messages: number; events: number; failedEvents: number } | null = () => null;
  private lastEventCounts = { messages: 0, events: 0, failedEvents: 0 };
  readonly events = new Counter({
    name: 'portcullis_gateway_events_total',
    help: 'Session events by result (persisted = acknowledged by JetStream; failed = not persisted)',
    labelNames: ['result'] as const,
    registers: [this.registry],
    collect: () => this.flushEventCounts(),
  });
  readonly eventMessages = new Counter({
    name: 'portcullis_gateway_event_messages_total',
    help: 'JetStream messages (event batches) acknowledged; events_total / this = events per batch',
    registers: [this.registry],
    collect: () => this.flushEventCounts(),
  });

  private flushEventCounts(): void {
    const c = this.eventCounts();
    if (!c) return;
    const last = this.lastEventCounts;
    // a new publisher starts from zero: count what it has so far
    const delta = (now: number, before: number) => (now >= before ? now - before : now);
    const persisted = delta(c.events, last.events);
    const failed = delta(c.failedEvents, last.failedEvents);
    const messages = delta(c.messages, last.messages);
    if (persisted) this.events.inc({ result: 'persisted' }, persisted);
    if (failed) this.events.inc({ result: 'failed' }, failed);
    if (messages) this.eventMessages.inc(messages);
    this.lastEventCounts = { ...c };
  }
  readonly errors = new Counter({
    name: 'portcullis_gateway_errors_total',
    help: 'Errors by kind (protocol, auth, upstream, recording, internal); refused credentials (kind auth) also by protocol (postgres, ssh, kubernetes)',
    labelNames: ['kind', 'protocol'] as const,
    registers: [this.registry],
  });
  readonly sessionsTerminated = new Counter({
    name: 'portcullis_gateway_sessions_terminated_total',
    help: 'Live sessions the gateway ended on its own, by reason and protocol: a new config revoked their credential, removed their connection or changed their policy, (GATEWAY_END_SESSIONS_AT_EXPIRY) their credential expired, their required recording failed, or (SSH) what they held in flight would go past the buffer budget or their identity\'s share',
    labelNames: ['reason', 'protocol'] as const,
    registers: [this.registry],
  });
  readonly fastLaneSessions = new Counter({
    name: 'portcullis_gateway_fast_lane_sessions_total',
    help: 'Sessions relayed by the native fast lane (plaintext, no masking); the others are relayed in JavaScript',
    registers: [this.registry],
  });
  readonly idleCompactions = new Counter({
    name: 'portcullis_gateway_idle_compactions_total',
    help: 'Full garbage collections (and C heap trims) run when the gateway went quiet after traffic',
    registers: [this.registry],
  });
  readonly maskedValues = new Counter({ name: 'portcullis_gateway_masked_values_total', help: 'Values rewritten by masking', registers: [this.registry] });
  readonly upstreamConnect = new Histogram({
    name: 'portcullis_gateway_upstream_connect_seconds',
    help: 'Time to open and authenticate an upstream connection',
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly configRejected = new Counter({
    name: 'portcullis_gateway_config_rejected_total',
    help: 'Config snapshots refused: signature (not signed by a GATEWAY_CONFIG_PUBLIC_KEY key: forged, tampered, unsigned), invalid, older (a replay)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly bufferedBytes = new Gauge({
    name: 'portcullis_gateway_buffered_bytes',
    help: 'Bytes reserved from the buffer budget (GATEWAY_BUFFER_BYTES): large messages in flight on the JavaScript relay, Kubernetes bodies held, and the worst case of every open SSH channel',
    registers: [this.registry],
  });
  /** Set by the SSH module: the bytes its sessions hold in flight, read when scraped. */
  sshBufferedBytesNow: () => number = () => 0;
  readonly sshBufferedBytes: Gauge = new Gauge({
    name: 'portcullis_gateway_ssh_buffered_bytes',
    help: 'Bytes SSH sessions hold in flight (channel buffers of both connections, shell input held for decisions, socket write queues); bounded by backpressure, GATEWAY_SSH_MAX_CHANNELS and the buffer budget each open channel reserves from',
    registers: [this.registry],
    collect: (): void => this.sshBufferedBytes.set(this.sshBufferedBytesNow()),
  });
  readonly channelsRefused = new Counter({
    name: 'portcullis_gateway_ssh_channels_refused_total',
    help: 'SSH channel opens refused: reason channels (the client connection already held GATEWAY_SSH_MAX_CHANNELS)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly bufferWaits = new Counter({
    name: 'portcullis_gateway_buffer_waits_total',
    help: 'Times a session stopped reading until the buffer budget could hold its next large message',
    labelNames: ['budget'],
    registers: [this.registry],
  });
  /** Set by the gateway: the SQL parser's health (@portcullis/policy parserHealth), read when scraped. */
  parserHealth: () => { healthy: boolean; restarts: { fault: number; memory: number } } | null = () => null;
  private lastParserRestarts = { fault: 0, memory: 0 };
  readonly parserHealthy = new Gauge({
    name: 'portcullis_gateway_parser_healthy',
    help: 'The SQL parser can take statements (1) or has no working instance (0: every policy-bound statement is refused)',
    registers: [this.registry],
    collect: () => {
      const h = this.parserHealth();
      if (h) this.parserHealthy.set(h.healthy ? 1 : 0);
    },
  });
  readonly parserRestarts = new Counter({
    name: 'portcullis_gateway_parser_restarts_total',
    help: 'SQL parser instances replaced, by reason (fault = it failed on a statement; memory = it grew for a very large one)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
    collect: () => {
      const h = this.parserHealth();
      if (!h) return;
      for (const reason of ['fault', 'memory'] as const) {
        // the parser is per process; several gateways in one process each count what they have not yet seen
        const d = h.restarts[reason] - this.lastParserRestarts[reason];
        if (d > 0) this.parserRestarts.inc({ reason }, d);
      }
      this.lastParserRestarts = { ...h.restarts };
    },
  });
  readonly statementsTooComplex = new Counter({
    name: 'portcullis_gateway_statements_too_complex_total',
    help: 'Statements refused with SQLSTATE 54001 because they nest deeper than the SQL parser takes safely',
    registers: [this.registry],
  });
  /** Set by the gateway: its command analysis worker's running totals (core/command-analysis.ts), read when scraped. */
  commandAnalysisCounts: () => { analysed: number; refused: number } = () => ({ analysed: 0, refused: 0 });
  private lastCommandAnalysisCounts = { analysed: 0, refused: 0 };
  readonly commandAnalyses = new Counter({
    name: 'portcullis_gateway_command_analyses_total',
    help: 'Shell texts over 1 KiB (SSH exec and shell lines, Kubernetes exec commands and exec -it lines) analysed in the worker thread, off the event loop: decided, or refused as command-too-complex (too slow, too many queued)',
    labelNames: ['result'] as const,
    registers: [this.registry],
    collect: () => {
      const c = this.commandAnalysisCounts();
      const last = this.lastCommandAnalysisCounts;
      if (c.analysed > last.analysed) this.commandAnalyses.inc({ result: 'decided' }, c.analysed - last.analysed);
      if (c.refused > last.refused) this.commandAnalyses.inc({ result: 'refused' }, c.refused - last.refused);
      this.lastCommandAnalysisCounts = { ...c };
    },
  });
  readonly configRevision = new Gauge({ name: 'portcullis_gateway_config_revision', help: 'Revision of the config snapshot in use (0 = none)', registers: [this.registry] });

  /** `protocols`: the gateway's modules, whose live-session gauges start at 0 (a dashboard sees them before their first session) */
  constructor(defaults = false, protocols: readonly ProtocolName[] = []) {
    if (defaults) collectDefaultMetrics({ register: this.registry });
    for (const protocol of protocols) this.liveSessions.set({ protocol }, 0);
  }
}
