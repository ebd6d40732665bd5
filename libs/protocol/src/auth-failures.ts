/**
 * Refused logins as audit events (`auth.failed`) without letting a flood flood the trail. Failures are
 * counted per (source, identity, reason, target) and window: the first of a window is reported at once, the
 * rest of that window as one summary with their count when the window closes. The claimed identity is
 * the caller's word, so it is capped in length, and the number of keys a window tracks is capped too:
 * past it, failures fold into one key per reason with source and identity `*`. So each window yields
 * at most 2 × (maxKeys + reasons) events, whatever arrives.
 */

/** One refused attempt, as the refusing app saw it. */
export interface AuthFailure {
  /** client address (IP) */
  source: string | null;
  /** who the caller claimed to be (unverified: a token's `sub`, a user name) */
  identity: string | null;
  /** short machine reason (`invalid_token`, `expired`, `not_allowed`, …) */
  reason: string;
  /** where: `gateway`, `api`, `token-exchange` */
  surface: string;
  /** e.g. the connection or route asked for; taken from the window's first failure */
  target?: string | null;
  /** a human-readable line for investigators (never a secret); the window's first */
  detail?: string | null;
}

/** The `data` of an auth.failed event. */
export interface AuthFailedData {
  action: 'authenticate';
  target: string;
  surface: string;
  source: string | null;
  identity: string | null;
  reason: string;
  detail: string | null;
  /** failures this event stands for */
  count: number;
  firstAt: string;
  lastAt: string;
  /** true for the summary of a window's failures after its first */
  summary: boolean;
}

export const AUTH_FAILURE_WINDOW_MS = 60_000;
export const AUTH_FAILURE_MAX_KEYS = 1000;
const MAX_FIELD = 200;

const clip = (s: string | null | undefined): string | null => (s == null ? null : s.length > MAX_FIELD ? `${s.slice(0, MAX_FIELD)}…` : s);

interface Bucket {
  first: AuthFailure;
  firstAt: number;
  lastAt: number;
  /** failures after the first, not yet reported */
  more: number;
  key: string;
}

export class AuthFailureAggregator {
  private windowStart = -Infinity;
  private buckets = new Map<string, Bucket>();

  constructor(private readonly opts: { windowMs?: number; maxKeys?: number } = {}) {}

  private get windowMs(): number {
    return this.opts.windowMs ?? AUTH_FAILURE_WINDOW_MS;
  }

  /**
   * Counts one failure. Returns what to report now (the first of its key in this window) and any
   * summaries of the window that closed before it.
   */
  record(f: AuthFailure, now: number): AuthFailedData[] {
    const out = now - this.windowStart >= this.windowMs ? this.drain(now) : [];
    if (this.buckets.size === 0) this.windowStart = now;
    const failure: AuthFailure = { ...f, source: clip(f.source), identity: clip(f.identity), reason: clip(f.reason) ?? 'unknown', target: clip(f.target), detail: clip(f.detail) };
    // the target is part of the key: a refusal on one connection (an SSH login) is never folded into
    // another's summary (a Kubernetes request), where an investigator would not look for it
    let key = JSON.stringify([failure.surface, failure.source, failure.identity, failure.reason, failure.target]);
    if (!this.buckets.has(key) && this.buckets.size >= (this.opts.maxKeys ?? AUTH_FAILURE_MAX_KEYS)) {
      key = JSON.stringify([failure.surface, '*', '*', failure.reason, '*']);
      failure.source = '*';
      failure.identity = '*';
      failure.target = '*';
    }
    const b = this.buckets.get(key);
    if (b) {
      b.more++;
      b.lastAt = now;
      return out;
    }
    this.buckets.set(key, { first: failure, firstAt: now, lastAt: now, more: 0, key });
    out.push(dataOf(failure, 1, now, now, false));
    return out;
  }

  /** Summaries of the current window if it has closed by `now` (call it on a timer); resets the window. */
  drain(now: number, force = false): AuthFailedData[] {
    if (!force && now - this.windowStart < this.windowMs) return [];
    const out: AuthFailedData[] = [];
    for (const b of this.buckets.values()) if (b.more > 0) out.push(dataOf(b.first, b.more, b.firstAt, b.lastAt, true));
    this.buckets.clear();
    this.windowStart = -Infinity;
    return out;
  }
}

function dataOf(f: AuthFailure, count: number, firstAt: number, lastAt: number, summary: boolean): AuthFailedData {
  return {
    action: 'authenticate',
    target: f.target ?? f.identity ?? f.source ?? 'unknown',
    surface: f.surface,
    source: f.source,
    identity: f.identity,
    reason: f.reason,
    detail: f.detail ?? null,
    count,
    firstAt: new Date(firstAt).toISOString(),
    lastAt: new Date(lastAt).toISOString(),
    summary,
  };
}
