/**
 * Failed logins per client address: after `max` failures within `windowMs`, further attempts from
 * that address are refused without being verified until the window has passed. Keeps memory bounded
 * (the oldest addresses are forgotten first) so a spray from many addresses cannot grow it forever.
 */
export class SourceLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly max = 10,
    private readonly windowMs = 60_000,
    private readonly maxSources = 10_000,
  ) {}

  private recent(source: string, now: number): number[] {
    const list = (this.failures.get(source) ?? []).filter((t) => now - t < this.windowMs);
    if (list.length) this.failures.set(source, list);
    else this.failures.delete(source);
    return list;
  }

  /** Seconds until `source` may try again, or 0 when it may now. */
  blockedFor(source: string, now = Date.now()): number {
    const list = this.recent(source, now);
    if (list.length < this.max) return 0;
    return Math.max(1, Math.ceil((list[list.length - this.max]! + this.windowMs - now) / 1000));
  }

  fail(source: string, now = Date.now()): void {
    const list = this.recent(source, now);
    list.push(now);
    this.failures.delete(source);
    this.failures.set(source, list.slice(-this.max));
    if (this.failures.size > this.maxSources) this.failures.delete(this.failures.keys().next().value!);
  }
}
