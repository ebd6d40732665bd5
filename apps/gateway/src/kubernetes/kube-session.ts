import { randomUUID } from 'node:crypto';
import type { ResolvedPolicy } from '../config/config-store.js';
import type { LiveSession, SessionCore, SessionEnding, SessionGrant } from '../core/session-core.types.js';
import type { SessionEventType, SessionRecorder } from '../events/event-publisher.js';
import type { Logger } from '../logger.js';
import type { KubeCall } from './kube-listener.js';

export interface KubeSessionOptions {
  core: SessionCore;
  /** the core's admission of the connection's first request */
  grant: SessionGrant;
  clientAddr: string | null;
}

/**
 * The session of one kubectl connection (one client TLS connection and one credential): session.start
 * when its first request is admitted, a `kube.request` event per request, `terminal` events for
 * exec/attach streams, session.end when the client goes. A LiveSession of the core: a revoked
 * credential, a removed connection, lost access, a changed policy or lost recording on a connection
 * that requires it ends it (SessionRegistry), and with it its long-lived streams (watches, logs -f,
 * exec), which register a closer; the connection's next request opens a new session, or is refused.
 */
export class KubeSession implements LiveSession {
  readonly id = randomUUID();
  readonly protocol = 'kubernetes';
  /** requests are decided by the policy of the config they were admitted under; the session's is the latest it adopted */
  grant: SessionGrant;
  recorder: SessionRecorder | null = null;
  live = false;
  /** the message of the core's ending, when it ended the session */
  endedBy: string | null = null;
  private readonly log: Logger;
  private readonly startedAt = Date.now();
  private requests = 0;
  private streamSeq = 0;
  private readonly closers = new Set<() => void>();
  private ended = false;

  constructor(private readonly o: KubeSessionOptions) {
    this.grant = o.grant;
    this.log = o.core.logger.child({ session: this.id, connection: o.grant.connection.name });
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** session.start (throws AccessRefused when a connection that requires recording cannot record), then live in the core's registry. */
  async start(): Promise<void> {
    const { core, grant } = this.o;
    const conn = grant.connection;
    this.recorder = await core.startRecording(
      this.id,
      grant,
      { protocol: 'kubernetes', clientAddr: this.o.clientAddr, database: conn.name, tls: true, impersonate: conn.kubernetes?.impersonate ?? false },
      (err) => {
        this.log.warn({ err: err.message }, 'kubernetes session recording failed');
        if (conn.recording === 'required') this.recordingEnded('recording_failed');
      },
      this.log,
    );
    core.metrics.sessionOutcome('kubernetes', 'ok');
    core.metrics.sessionLive('kubernetes', 1);
    this.live = true;
    core.sessions.add(this);
    core.sessions.live(this);
  }

  emit(type: SessionEventType, data: Record<string, unknown>): void {
    if (!this.ended) this.recorder?.emit(type, data);
  }

  /** One `kube.request` event: the request's attributes, the decision and what came of it. */
  request(call: KubeCall, outcome: { status: number; action: string; rule?: string | null; reason?: string | null; phase?: 'start' | 'end' } & Record<string, unknown>): void {
    if (outcome.phase !== 'start') this.requests++;
    const i = call.info;
    this.emit('kube.request', {
      requestId: call.id,
      verb: i.verb,
      ...(i.isResourceRequest
        ? { apiGroup: i.apiGroup, apiVersion: i.apiVersion, resource: i.resource, subresource: i.subresource || null, namespace: i.namespace || null, name: i.name || null }
        : { path: i.path }),
      ...(i.command ? { command: i.command } : {}),
      identity: call.credential.claims.sub,
      impersonated: call.upstream.impersonate,
      durationMs: Date.now() - call.started,
      ...(call.approval ? { approvalId: call.approval.approvalId } : {}),
      ...outcome,
    });
  }

  newStream(kind: string): string {
    return `${kind}-${++this.streamSeq}`;
  }

  /** A long-lived stream of this session: `close` is called when the session ends under it. */
  hold(close: () => void): () => void {
    this.closers.add(close);
    return () => this.closers.delete(close);
  }

  holdsEarlierDecisions(): boolean {
    return false;
  }

  /** A newer version of the connection's policy (only guardrails changed): new requests are admitted under it anyway. */
  adoptPolicy(policy: ResolvedPolicy): void {
    this.grant = { ...this.grant, policy };
  }

  /** The core ends the session (a new config, expiry, gateway stop). */
  end(ending: SessionEnding): void {
    if (this.ended) return;
    this.endedBy = ending.message.replace(/^terminating connection: /, '');
    this.close(ending.reason);
  }

  recordingLost(): void {
    if (this.recorder?.mode === 'required') this.recordingEnded('recording_unavailable');
  }

  private recordingEnded(reason: string): void {
    if (this.ended) return;
    this.o.core.metrics.sessionTerminated('kubernetes', reason);
    this.close(reason);
  }

  /** Ends the session: its streams close, session.end is recorded, the core forgets it. */
  close(reason: string): void {
    if (this.ended) return;
    for (const close of [...this.closers]) {
      try {
        close();
      } catch {
        // already closed
      }
    }
    this.closers.clear();
    this.recorder?.emit('session.end', { reason, durationMs: Date.now() - this.startedAt, requests: this.requests });
    this.ended = true;
    if (this.live) this.o.core.metrics.sessionLive('kubernetes', -1);
    this.log.info({ reason, requests: this.requests }, 'kubernetes session ended');
    this.o.core.sessions.ended(this);
  }

  flushEvents(): Promise<void> {
    return this.recorder?.flush() ?? Promise.resolve();
  }
}
