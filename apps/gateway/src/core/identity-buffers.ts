import type { BufferBudget } from './buffer-budget.js';

/** Why bytes could not be held: the identity's share is used up, or the whole process budget is. */
export type BufferShortage = 'share' | 'process';

/**
 * Bytes held for one identity across all its connections and credentials: each is taken from the
 * process budget (GATEWAY_BUFFER_BYTES, shared with the Postgres relay) and from the identity's share
 * (GATEWAY_SESSION_BUFFER_BYTES), with tryReserve — a holder never waits holding bytes: when either is
 * used up it is refused at once and gives back what it held, so holders cannot deadlock each other.
 *
 * The Kubernetes listener holds request bodies and the responses it masks this way, as they arrive
 * (refused: 503 with Retry-After, which kubectl's client retries); the SSH listener takes what each
 * session holds in flight as it grows, in steps, and gives it back as it drains (refused: the session
 * ends with the reason). Each protocol has its own instance: an identity's share
 * bounds its Kubernetes requests and, separately, its SSH channels.
 */
export class IdentityBuffers {
  private readonly byIdentity = new Map<string, number>();

  constructor(
    private readonly process: BufferBudget | null,
    readonly shareBytes: number,
  ) {}

  /** A holder for one request of `identity`; release() gives back all it took. */
  hold(identity: string): BufferHold {
    return new BufferHold(this, identity);
  }

  /** What `identity` holds now. */
  heldBy(identity: string): number {
    return this.byIdentity.get(identity) ?? 0;
  }

  /** @internal */
  take(identity: string, bytes: number): BufferShortage | null {
    const used = this.byIdentity.get(identity) ?? 0;
    if (used + bytes > this.shareBytes) return 'share';
    if (this.process && !this.process.tryReserve(bytes)) return 'process';
    this.byIdentity.set(identity, used + bytes);
    return null;
  }

  /** @internal */
  give(identity: string, bytes: number): void {
    if (bytes <= 0) return;
    const left = (this.byIdentity.get(identity) ?? 0) - bytes;
    if (left > 0) this.byIdentity.set(identity, left);
    else this.byIdentity.delete(identity);
    this.process?.release(bytes);
  }
}

export class BufferHold {
  private held = 0;

  constructor(
    private readonly buffers: IdentityBuffers,
    private readonly identity: string,
  ) {}

  get bytes(): number {
    return this.held;
  }

  /** the identity's share (GATEWAY_SESSION_BUFFER_BYTES) */
  get shareBytes(): number {
    return this.buffers.shareBytes;
  }

  /** Takes `bytes` more; null when taken, else what ran short (nothing was taken then). */
  take(bytes: number): BufferShortage | null {
    const short = this.buffers.take(this.identity, bytes);
    if (short === null) this.held += bytes;
    return short;
  }

  /** Gives back `bytes` of what it holds (a request body the API server has taken). */
  giveBack(bytes: number): void {
    const n = Math.min(bytes, this.held);
    this.buffers.give(this.identity, n);
    this.held -= n;
  }

  release(): void {
    this.buffers.give(this.identity, this.held);
    this.held = 0;
  }
}

/**
 * The message a refusal carries (a Kubernetes Status, an SSH channel open failure), naming the setting
 * that bounds it; `holders` names what the identity holds (its requests in flight, its SSH channels).
 */
export function shortageMessage(short: BufferShortage, what: string, shareBytes: number, holders = 'requests in flight'): string {
  return short === 'share'
    ? `${what} would take this identity's ${holders} past their share of the gateway's buffer memory (GATEWAY_SESSION_BUFFER_BYTES, ${shareBytes} bytes); retry when they are done`
    : `${what} cannot be held now: the gateway's buffer memory (GATEWAY_BUFFER_BYTES) is in use by other sessions; retry shortly`;
}
