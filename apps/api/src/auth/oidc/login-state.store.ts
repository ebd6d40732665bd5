import session from 'express-session';

/**
 * express-session store for the login round trip only: in memory, entries expire with their cookie, and
 * the number of pending logins is capped (oldest evicted) — /v1/auth/login is public, so an unbounded
 * store (express-session's MemoryStore never prunes abandoned sessions) would be a memory leak anyone can drive.
 */
export class LoginStateStore extends session.Store {
  private readonly entries = new Map<string, { data: session.SessionData; expires: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {
    super();
  }

  get size(): number {
    return this.entries.size;
  }

  override get(sid: string, cb: (err: unknown, data?: session.SessionData | null) => void): void {
    const hit = this.entries.get(sid);
    if (!hit || hit.expires <= Date.now()) {
      this.entries.delete(sid);
      return cb(null, null);
    }
    cb(null, hit.data);
  }

  override set(sid: string, data: session.SessionData, cb?: (err?: unknown) => void): void {
    const cookieExpiry = data.cookie?.expires ? new Date(data.cookie.expires).getTime() : NaN;
    const expires = Math.min(Number.isFinite(cookieExpiry) ? cookieExpiry : Infinity, Date.now() + this.ttlMs);
    this.entries.delete(sid); // re-insert: Map order = age
    this.entries.set(sid, { data: JSON.parse(JSON.stringify(data)) as session.SessionData, expires });
    this.prune();
    cb?.();
  }

  override destroy(sid: string, cb?: (err?: unknown) => void): void {
    this.entries.delete(sid);
    cb?.();
  }

  override touch(sid: string, data: session.SessionData, cb?: () => void): void {
    if (this.entries.has(sid)) this.set(sid, data);
    cb?.();
  }

  private prune(): void {
    const now = Date.now();
    for (const [sid, e] of this.entries) {
      if (this.entries.size <= this.maxEntries && e.expires > now) break;
      this.entries.delete(sid);
    }
  }
}
