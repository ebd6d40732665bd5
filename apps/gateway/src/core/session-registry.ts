import { accessCallerOf } from '@portcullis/protocol';
import type { ActiveConfig } from '../config/config-store.js';
import type { Logger } from '../logger.js';
import { reviewLiveSession } from './live-config.js';
import type { LiveSession, SessionEnding } from './session-core.types.js';

/** setTimeout holds at most ~24.8 days: a longer wait is taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Timers {
  review: NodeJS.Timeout | null;
  expiry: NodeJS.Timeout | null;
}

/**
 * The live sessions of every protocol module, and what the core does to them: a new config reviews
 * each (revoked credential, removed connection, lost access, changed policy: reviewLiveSession), an
 * access grant's end reviews its session at that moment, a credential's expiry ends its session when
 * GATEWAY_END_SESSIONS_AT_EXPIRY is on, a lost event stream ends sessions that require recording, and
 * gateway stop ends them all.
 */
export class SessionRegistry implements Iterable<LiveSession> {
  private readonly all = new Set<LiveSession>();
  private readonly timers = new Map<LiveSession, Timers>();
  /** sessions accepted since start (idle compaction's measure of activity) */
  accepted = 0;

  constructor(
    private readonly opts: {
      config(): ActiveConfig | null;
      logger: Logger;
      /** end each session when its credential expires */
      endAtExpiry: boolean;
      onTerminated?(session: LiveSession, reason: string): void;
    },
  ) {}

  [Symbol.iterator](): Iterator<LiveSession> {
    return this.all[Symbol.iterator]();
  }

  get size(): number {
    return this.all.size;
  }

  /** Sessions relaying now (the heartbeat's liveSessions). */
  get liveCount(): number {
    let n = 0;
    for (const s of this.all) if (s.live && !s.isEnded) n++;
    return n;
  }

  /** Bytes the live sessions relayed so far (part of idle compaction's measure of activity). */
  get bytesRelayed(): number {
    let n = 0;
    for (const s of this.all) n += (s.bytesIn ?? 0) + (s.bytesOut ?? 0);
    return n;
  }

  /** A client connected (before its handshake). */
  add(session: LiveSession): void {
    this.accepted++;
    this.all.add(session);
  }

  /**
   * The session was admitted and relays now: it answers to a config that arrived meanwhile, and its
   * access grant's end (and credential expiry, when configured) are watched from now on.
   */
  live(session: LiveSession): void {
    const grant = session.grant;
    if (!grant || session.isEnded) return;
    const now = this.opts.config();
    if (now && now !== grant.config) this.review(session, now);
    if (session.isEnded) return;
    if (this.opts.endAtExpiry && grant.expiresAt !== null) this.armExpiry(session, grant.expiresAt);
    // a session resting on an access grant is reviewed again the moment the grant ends, not at the next config
    const grantEnds = accessCallerOf(grant.claims, grant.expiresAt).grants[0]?.until;
    if (grantEnds !== undefined) this.armReview(session, grantEnds);
  }

  /** The session ended (the module calls this once). */
  ended(session: LiveSession): void {
    this.all.delete(session);
    const t = this.timers.get(session);
    if (t) {
      if (t.review) clearTimeout(t.review);
      if (t.expiry) clearTimeout(t.expiry);
      this.timers.delete(session);
    }
  }

  /** A new config: every live session answers to it now, not at its next login. */
  configChanged(config: ActiveConfig): void {
    for (const s of [...this.all]) this.review(s, config);
  }

  /** The event stream was lost: sessions that require recording end now. */
  recordingLost(): void {
    for (const s of [...this.all]) s.recordingLost();
  }

  /** Gateway stop: every session ends, and their events are flushed. */
  async shutdown(): Promise<void> {
    for (const s of [...this.all]) if (!s.isEnded) s.end({ message: 'the gateway is shutting down', reason: 'gateway_shutdown' });
    await Promise.allSettled([...this.all].map((s) => s.flushEvents()));
  }

  private review(session: LiveSession, config: ActiveConfig): void {
    const grant = session.grant;
    if (session.isEnded || !grant || !session.live) return;
    const v = reviewLiveSession(
      {
        tokenId: grant.claims.jti,
        connection: grant.connection.name,
        caller: accessCallerOf(grant.claims, grant.expiresAt, config.revokedGrants),
        policy: grant.policy,
        holdsEarlierDecisions: session.holdsEarlierDecisions(),
      },
      config,
    );
    if (v.kind === 'keep') return;
    if (v.kind === 'adopt') {
      this.opts.logger.info({ session: session.id, policy: v.policy.name, from: grant.policy?.version, to: v.policy.version }, 'session adopts the new version of its policy');
      session.adoptPolicy(v.policy);
      return;
    }
    this.terminate(session, v);
  }

  private terminate(session: LiveSession, ending: SessionEnding): void {
    this.opts.logger.info({ session: session.id, reason: ending.reason }, 'session terminated by the gateway');
    this.opts.onTerminated?.(session, ending.reason);
    session.end(ending);
  }

  private timersOf(session: LiveSession): Timers {
    let t = this.timers.get(session);
    if (!t) this.timers.set(session, (t = { review: null, expiry: null }));
    return t;
  }

  private armReview(session: LiveSession, when: number): void {
    const t = this.timersOf(session);
    t.review = setTimeout(() => {
      t.review = null;
      if (session.isEnded) return;
      if (Date.now() < when) return this.armReview(session, when);
      const config = this.opts.config();
      if (config) this.review(session, config);
    }, Math.max(0, Math.min(when - Date.now(), MAX_TIMER_MS)));
    t.review.unref();
  }

  private armExpiry(session: LiveSession, expiresAt: number): void {
    const t = this.timersOf(session);
    t.expiry = setTimeout(() => {
      t.expiry = null;
      if (session.isEnded) return;
      if (Date.now() < expiresAt) return this.armExpiry(session, expiresAt);
      this.terminate(session, { message: 'terminating connection: the gateway credential of this session expired', reason: 'credential_expired' });
    }, Math.max(0, Math.min(expiresAt - Date.now(), MAX_TIMER_MS)));
    t.expiry.unref();
  }
}
