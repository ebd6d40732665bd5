/**
 * The bytes a gateway process may hold for large messages in flight (GATEWAY_BUFFER_BYTES).
 *
 * The JavaScript relay receives each message whole before it decides or masks it: a message of
 * N bytes costs N bytes until the peer it goes to has taken it. A session reserves a large
 * message's whole size before reading the rest of it; when the budget cannot give it, that socket
 * stops being read until it can (backpressure: nothing is dropped). A reservation is always for
 * a whole message, so every holder can finish what it holds and give it back: sessions waiting
 * on each other cannot deadlock. Waiters are served in order, so a large request is not starved by
 * smaller ones arriving after it.
 */
export class BufferBudget {
  private used = 0;
  private readonly waiting: { bytes: number; grant: () => void }[] = [];

  constructor(
    readonly limit: number,
    private readonly onChange: (used: number) => void = () => undefined,
  ) {}

  get inUse(): number {
    return this.used;
  }

  /** Reserves `bytes` now (true), or queues `grant`, called once they are reserved (false). */
  reserve(bytes: number, grant: () => void): boolean {
    if (this.waiting.length === 0 && this.used + bytes <= this.limit) {
      this.add(bytes);
      return true;
    }
    this.waiting.push({ bytes, grant });
    return false;
  }

  /**
   * Reserves `bytes` only if they are free now (and nobody waits): for holders that grow piece by
   * piece (an HTTP body of unknown size), which must not wait while holding — they are refused instead
   * (the Kubernetes listener answers 503 with Retry-After), so they cannot deadlock each other.
   */
  tryReserve(bytes: number): boolean {
    if (this.waiting.length > 0 || this.used + bytes > this.limit) return false;
    this.add(bytes);
    return true;
  }

  /** Drops a queued request (its session ended); false when it was already granted. */
  cancel(grant: () => void): boolean {
    const i = this.waiting.findIndex((w) => w.grant === grant);
    if (i < 0) return false;
    this.waiting.splice(i, 1);
    this.serve();
    return true;
  }

  release(bytes: number): void {
    if (bytes <= 0) return;
    this.add(-Math.min(bytes, this.used));
    this.serve();
  }

  private serve(): void {
    while (this.waiting.length > 0 && this.used + this.waiting[0].bytes <= this.limit) {
      const w = this.waiting.shift()!;
      this.add(w.bytes);
      w.grant();
    }
  }

  private add(n: number): void {
    this.used += n;
    this.onChange(this.used);
  }
}
