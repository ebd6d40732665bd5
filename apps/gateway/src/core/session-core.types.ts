import type { AddressInfo } from 'node:net';
import type { NatsConnection } from '@nats-io/transport-node';
import type { AuthFailure, GatewayTokenClaims } from '@portcullis/protocol';
import type { ActiveConfig, ResolvedConnection, ResolvedPolicy } from '../config/config-store.js';
import type { GatewayEnv } from '../env.js';
import type { SessionRecorder } from '../events/event-publisher.js';
import type { GatewayMetrics } from '../http/metrics.js';
import type { Logger } from '../logger.js';
import type { ApprovalWording, CommandApprovals } from '../approvals/command-approvals.js';
import type { BufferBudget } from './buffer-budget.js';
import type { CommandAnalysis } from './command-analysis.js';
import type { PolicyLib } from './policy-lib.js';
import type { SessionRegistry } from './session-registry.js';

/**
 * The contract between the gateway's protocol-neutral session core and its protocol modules
 * (postgres/, ssh/, kubernetes/). apps/gateway/README.md explains it in prose.
 */

/** The wire protocols a gateway can serve: a connection's `kind`. */
export type ProtocolName = 'postgres' | 'ssh' | 'kubernetes';

/**
 * One wire protocol: a listener that speaks the protocol to clients and targets and calls the core for
 * everything else. The gateway starts the modules it is configured with (GATEWAY_PROTOCOLS).
 */
export interface ProtocolModule {
  readonly protocol: ProtocolName;
  /** Binds the listener and starts accepting clients; resolves with the bound address. */
  listen(core: SessionCore): Promise<AddressInfo>;
  /**
   * Stops accepting clients at once (synchronously, before its first await); the promise settles when
   * the listener is closed. The core ends the live sessions (SessionRegistry.shutdown) right after
   * calling it, before awaiting it.
   */
  close(): Promise<void>;
  /** Optional: gives back native memory after a burst (the gateway's idle compaction calls it); true when it did. */
  compact?(): boolean;
  /**
   * Optional: a new config for the module's listener itself (a new host key or certificate). Its live
   * sessions are not the module's business here: the core reviews them (SessionRegistry).
   */
  configChanged?(config: ActiveConfig): void;
}

/** A client's request to open a session on a connection, as a module has it after its own handshake. */
export interface AccessRequest {
  protocol: ProtocolName;
  /** the gateway credential (password, bearer token, certificate key id) */
  token: string;
  /** the connection the client asked for (Postgres database name, SSH user, URL path) */
  connection: string;
  /** client address, for the audit trail of refusals */
  source: string | null;
  /** who the client said it is at the protocol level (e.g. the Postgres user), for refusals whose token names nobody */
  claimedUser: string | null;
  /** the public key the client proved it holds (SSH: a user certificate's key); a key-bound credential needs it */
  proof?: { sshKeyBlob?: Buffer };
}

/** Who and what a session is, once the core admitted it. */
export interface SessionGrant {
  claims: GatewayTokenClaims;
  connection: ResolvedConnection;
  /** the connection's policy as of the login (a live session may adopt newer versions: LiveSession.adoptPolicy) */
  policy: ResolvedPolicy | null;
  /** the config the session was admitted under */
  config: ActiveConfig;
  /** when the credential expires (ms since the epoch), null when it does not say */
  expiresAt: number | null;
}

/**
 * Why the core refused a session. `reason` is a stable label (metrics, session.end, logs); `message`
 * is safe to show the client. Modules map reasons to their protocol's refusal (postgres: a SQLSTATE).
 */
export type AccessRefusalReason =
  | 'no_config'
  | 'unknown_connection'
  | 'wrong_protocol'
  | 'policy_unavailable'
  | 'recording_unavailable'
  | `auth_${'invalid' | 'expired' | 'revoked' | 'wrong_connection' | 'not_allowed'}`;

/** How the core ends a live session of any protocol (config reactions, expiry, shutdown); protocol-neutral: no SQLSTATE. */
export interface SessionEnding {
  /** stable label: session.end `reason`, metrics */
  reason: string;
  /** what the client is told (each module says it its way: Postgres a FATAL 57P01, SSH a channel message, Kubernetes a Status) */
  message: string;
}

/**
 * A session of any protocol as the core sees it. The module creates it, registers it with
 * `core.sessions.add()` at accept, and the registry removes it when `ended` turns true (the module
 * calls `core.sessions.ended(session)`).
 */
export interface LiveSession {
  readonly id: string;
  readonly protocol: ProtocolName;
  /** set once the core admitted it (null during the handshake) */
  readonly grant: SessionGrant | null;
  /** relaying (counted in the heartbeat's liveSessions) */
  readonly live: boolean;
  readonly isEnded: boolean;
  /**
   * The session acts later on decisions made earlier without deciding again (Postgres: named prepared
   * statements): a new policy version then ends it instead of being adopted.
   */
  holdsEarlierDecisions(): boolean;
  /** Decide the next commands by this newer version of the session's policy (only its guardrails changed). */
  adoptPolicy(policy: ResolvedPolicy): void;
  /** The core ends the session: tell the client `ending.message`, close both sides, record session.end. */
  end(ending: SessionEnding): void;
  /** The event stream was lost: a session whose connection requires recording ends now (fail closed). */
  recordingLost(): void;
  /** Waits until the session's events are acknowledged (gateway stop). */
  flushEvents(): Promise<void>;
  /**
   * Bytes relayed so far, where the module counts them: idle compaction must not take a session that
   * moves data without statements or events (an scp of 1 GiB) for a quiet gateway.
   */
  readonly bytesIn?: number;
  readonly bytesOut?: number;
}

/** What every protocol module gets from the gateway. */
export interface SessionCore {
  readonly env: GatewayEnv;
  readonly gatewayId: string;
  readonly pool: string;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  /** the config in force (null before the first valid snapshot: refuse sessions) */
  currentConfig(): ActiveConfig | null;
  /**
   * Admits a session: verifies the credential (signature, audience, expiry, revocation, connection
   * binding, the access rule of libs/protocol), checks the connection is of the module's protocol and
   * resolves its policy. Refused logins are counted and recorded as `auth.failed`. Throws AccessRefused.
   */
  authenticate(req: AccessRequest): Promise<SessionGrant>;
  /**
   * A login the module refused before it had a credential to verify (an SSH certificate that does not
   * check out, an HTTP request without a bearer token): counted and recorded as `auth.failed` like
   * the refusals of `authenticate`.
   */
  authFailed(failure: Omit<AuthFailure, 'surface'>, connection: string | null, protocol: string): void;
  /**
   * Opens the session's event sequence and records `session.start` (its data: the module's fields, then
   * the core's: pool, policy, policyVersion, subject, groups, tokenId). On a connection that requires
   * recording it waits for the ack and throws AccessRefused('recording_unavailable') when it fails;
   * later failures call `onRecordingFailed` (end the session).
   */
  startRecording(
    sessionId: string,
    grant: SessionGrant,
    data: Record<string, unknown>,
    onRecordingFailed: (err: Error) => void,
    logger: Logger,
  ): Promise<SessionRecorder>;
  /** @portcullis/policy, loaded at start; null when it failed to load (every policy is then refused) */
  readonly policyLib: PolicyLib | null;
  /**
   * Approvals of held commands for one session; null when approvals are off on this gateway (refuse
   * such commands). `signal` ends the waits (the session ended, or the request that waits went);
   * `wording` is how the protocol tells its client (default: a SQL statement's words).
   */
  approvalsFor(sessionId: string, grant: SessionGrant, recorder: SessionRecorder | null, signal: AbortSignal, logger: Logger, wording?: ApprovalWording): CommandApprovals | null;
  /** every session of every module: config reactions, heartbeat liveSessions, shutdown */
  readonly sessions: SessionRegistry;
  /** the gateway's NATS connection (module-specific subjects, e.g. the Postgres cancel relay) */
  readonly nats: NatsConnection;
  /** false while the gateway knows it is cut off from NATS */
  recordingAvailable(): boolean;
  /** bytes the process may hold for large messages in flight, across every session (GATEWAY_BUFFER_BYTES) */
  readonly buffers: BufferBudget;
  /**
   * shell-command analysis (SSH exec and shell lines, Kubernetes exec commands and exec -it lines):
   * texts over 1 KiB are analysed in a worker thread, off the event loop that relays every session
   */
  readonly commandAnalysis: CommandAnalysis;
}
