import { randomUUID } from 'node:crypto';
import { accessCallerOf, type VerifiedCredential } from '../auth/credential-verifier.js';
import type { ActiveConfig, ResolvedPolicy } from '../config/config-store.js';
import { SessionRecorder, type EventPublisher, type SessionEventType } from '../events/event-publisher.js';
import type { GatewayMetrics } from '../http/metrics.js';
import type { Logger } from '../logger.js';
import { mayUseConnection } from '@portcullis/protocol';
import type { KubeCall } from './kube-listener.js';
import { atGrantEnd } from '../core/grant-end.js';

export interface KubeSessionOptions {
  gatewayId: string;
  pool: string;
  logger: Logger;
  metrics: GatewayMetrics;
  publisher: EventPublisher | null;
  credential: VerifiedCredential;
  policy: ResolvedPolicy | null;
  config: ActiveConfig;
  /** the config in force now (the access rule is asked again against it when an access grant ends) */
  currentConfig(): ActiveConfig | null;
  clientAddr: string | null;
  onEnd(s: KubeSession): void;
}

/**
 * The session of one kubectl connection (one client TLS connection and one credential): session.start
 * when its first request is admitted, a `kube.request` event per request, `terminal` events for
 * exec/attach streams, session.end when the client goes. Long-lived streams (watches, logs -f,
 * exec) register a closer: a revoked credential, a connection the caller lost, or lost recording on a
 * connection that requires it ends them at once.
 */
export class KubeSession {
  readonly id = randomUUID();
  private recorder: SessionRecorder | null = null;
  private readonly log: Logger;
  private readonly startedAt = Date.now();
  private requests = 0;
  private streamSeq = 0;
  private readonly closers = new Set<() => void>();
  private cancelGrantReview: () => void = () => undefined;
  ended = false;

  constructor(private readonly o: KubeSessionOptions) {
    this.log = o.logger.child({ session: this.id, connection: o.credential.connection.name });
  }

  get credential(): VerifiedCredential {
    return this.o.credential;
  }

  async start(): Promise<void> {
    const { credential, policy } = this.o;
    const conn = credential.connection;
    this.recorder = new SessionRecorder(
      this.o.publisher,
      { sessionId: this.id, identity: credential.claims.sub, connection: conn.name, gateway: this.o.gatewayId },
      this.o.config.eventKey,
      conn.recording,
      this.log,
      (err) => {
        this.log.warn({ err: err.message }, 'kubernetes session recording failed');
        if (conn.recording === 'required') this.end('recording_failed');
      },
    );
    const start = {
      protocol: 'kubernetes',
      clientAddr: this.o.clientAddr,
      database: conn.name,
      pool: this.o.pool,
      tls: true,
      policy: policy?.name ?? null,
      policyVersion: policy?.version ?? null,
      subject: credential.claims.sub,
      groups: credential.claims.groups,
      tokenId: credential.claims.jti,
      impersonate: conn.kubernetes?.impersonate ?? false,
    };
    if (conn.recording === 'required') await this.recorder.record('session.start', start);
    else this.recorder.emit('session.start', start);
    this.o.metrics.sessions.inc({ outcome: 'ok' });
    this.o.metrics.liveSessions.inc();
    // an open watch, logs -f or exec on a time-boxed access grant ends when the grant does, not at the next config
    this.cancelGrantReview = atGrantEnd(credential, () => {
      const current = this.o.currentConfig();
      if (current) this.configChanged(current);
      else this.end('access_removed');
    });
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

  /** gateway and pool, as an approval job names them */
  jobOrigin(): { gateway: string; pool: string } {
    return { gateway: this.o.gatewayId, pool: this.o.pool };
  }

  newStream(kind: string): string {
    return `${kind}-${++this.streamSeq}`;
  }

  /** A long-lived stream of this session: `close` is called when the session ends under it. */
  hold(close: () => void): () => void {
    this.closers.add(close);
    return () => this.closers.delete(close);
  }

  /** A new config: revoked credential, connection gone or no longer allowed → the session ends now. */
  configChanged(c: ActiveConfig): void {
    if (this.ended) return;
    const cred = this.o.credential;
    const conn = c.connections.get(cred.connection.name);
    let why: string | null = null;
    if (c.revoked.has(cred.claims.jti)) why = 'credential_revoked';
    else if (!conn) why = 'connection_removed';
    else if (!mayUseConnection(accessCallerOf(cred.claims, cred.expiresAt), conn, Date.now()).allowed) why = 'access_removed';
    if (why) this.end(why);
  }

  recordingLost(): void {
    if (this.recorder?.mode === 'required') this.end('recording_unavailable');
  }

  end(reason: string): void {
    if (this.ended) return;
    this.cancelGrantReview();
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
    this.o.metrics.liveSessions.dec();
    this.log.info({ reason, requests: this.requests }, 'kubernetes session ended');
    this.o.onEnd(this);
  }

  flush(): Promise<void> {
    return this.recorder?.flush() ?? Promise.resolve();
  }
}
