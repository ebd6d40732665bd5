import { headers, type NatsConnection } from '@nats-io/transport-node';
import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { NatsNames } from '@portcullis/protocol';
import type { Logger } from 'pino';
import { ChainWriter, type ChainHead, type Outcome, type PendingEvent } from './chain-writer.js';
import { EVENT_BATCH_SIG_HEADER } from '@portcullis/protocol';
import { decodeMessage, type DeadLetterReason } from './event-decoder.js';
import type { RecorderMetrics } from './metrics.js';

export interface BatchReport {
  persisted: number;
  /** publish (stream timestamp) → commit, per persisted event, in ms */
  lagsMs: number[];
  heads: Map<string, ChainHead>;
}

export interface EventConsumerOptions {
  nc: NatsConnection;
  js: JetStreamClient;
  names: NatsNames;
  /** the durable consumers this recorder pulls from (its partitions, and control-plane events on shard 0), with the bytes each may buffer */
  durables: { name: string; maxBytes: number }[];
  writer: ChainWriter;
  eventKey: Buffer;
  metrics: RecorderMetrics;
  logger: Logger;
  batchSize: number;
  batchBytes: number;
  gapSeconds: number;
  ackWaitSeconds: number;
  onBatch: (report: BatchReport) => void;
}

/**
 * Headers on a dead-lettered message. An event refused inside a batch is parked as the whole batch
 * body (its signature header kept, so it can still be verified) with the event's index.
 */
export const DEAD_LETTER_HEADERS = {
  reason: 'Portcullis-Reason', detail: 'Portcullis-Detail', subject: 'Portcullis-Subject', streamSeq: 'Portcullis-Stream-Seq', batchIndex: 'Portcullis-Batch-Index',
} as const;

const BACKOFF_MS = 1000;
const MAX_RETRY_MS = 500;

/** One message of a batch being written: acked once every event in it is stored or parked. */
interface MsgState {
  m: JsMsg;
  /** a batch message (refused events are parked with their index in it) */
  batch: boolean;
  /** some event must wait for its predecessor: hold the whole message */
  deferred: boolean;
  /** dead-letter publishes of refused events; false = not parked (redeliver) */
  parks: Promise<boolean>[];
}

interface Prepared {
  started: bigint;
  pending: PendingEvent[];
  /** the message each pending event came in, and its index there */
  owners: MsgState[];
  indexes: number[];
  states: MsgState[];
  /** whole messages being parked (acked or NAKed when done) */
  parking: Promise<void>[];
  held: Map<JsMsg, Held>;
  now: number;
}

interface Held {
  m: JsMsg;
  tries: number;
  retryAt: number;
  /** last time we told the server we are still working on it */
  touchedAt: number;
}

function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('22') || code === '23502' || code === '23514');
}

/** The Portcullis-Batch-Sig header of a batch message; undefined for a single event. */
function batchSigOf(m: JsMsg): string | undefined {
  return m.headers?.has(EVENT_BATCH_SIG_HEADER) ? m.headers.get(EVENT_BATCH_SIG_HEADER) : undefined;
}

function streamTimeMs(m: JsMsg): number {
  return Number(m.timestampNanos / 1_000_000n);
}

/**
 * Pulls from its durable consumers into one queue, writes batches through the ChainWriter, then
 * acknowledges. Each consumer delivers in stream order, and a session's events are all on one
 * consumer (its partition), so they arrive in order. Messages are buffered by the pull
 * subscriptions while a batch is being written, so the next batch is ready when the transaction
 * commits; max_bytes and the server's max_ack_pending bound the buffer.
 */
export class EventConsumer {
  private queue: JsMsg[] = [];
  /**
   * Session events whose predecessor is not stored yet. They are held here (still unacked) and
   * retried with the following batches rather than NAKed: with two recorders sharing the consumer,
   * a session's events alternate between them, and a NAK round trip per event would crawl.
   */
  private deferred: Held[] = [];
  private wake: (() => void) | null = null;
  private messages: ConsumerMessages[] = [];
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  /** first time (ms) an event was deferred for a missing predecessor, by event id */
  private readonly deferredSince = new Map<string, number>();

  constructor(private readonly o: EventConsumerOptions) {}

  async start(): Promise<void> {
    this.running = true;
    for (const d of this.o.durables) {
      const consumer = await this.o.js.consumers.get(this.o.names.eventStream, d.name);
      this.messages.push(await consumer.consume({
        // Bounded by bytes: a message may be one event or a batch of hundreds.
        max_bytes: d.maxBytes,
        // Pull requests of a recorder that died stay on the server until they expire and swallow
        // redeliveries meanwhile; a short expiry bounds that window after a crash.
        expires: 5000,
        callback: (m) => {
          this.queue.push(m);
          const w = this.wake;
          this.wake = null;
          w?.();
        },
      }));
    }
    this.loopDone = this.loop();
  }

  /** Stops pulling, finishes the batch in hand, and hands buffered messages back for immediate redelivery. */
  async stop(): Promise<void> {
    this.running = false;
    this.poke();
    await Promise.all(this.messages.map((m) => m.close().catch(() => undefined)));
    await this.loopDone;
    for (const m of this.queue.splice(0)) m.nak();
    for (const d of this.deferred.splice(0)) d.m.nak();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async loop(): Promise<void> {
    let inflight: Promise<void> = Promise.resolve();
    while (this.running) {
      const now = Date.now();
      let due: Held[] = [];
      if (this.deferred.length) {
        due = this.deferred.filter((d) => d.retryAt <= now);
        if (due.length) this.deferred = this.deferred.filter((d) => d.retryAt > now);
        this.keepAlive(now);
      }
      if (!this.queue.length && !due.length) {
        const next = this.deferred.length ? Math.min(...this.deferred.map((d) => d.retryAt)) - now : -1;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          if (next >= 0) setTimeout(() => this.poke(), Math.max(next, 1));
        });
        continue;
      }
      const tries = new Map<JsMsg, Held>(due.map((d) => [d.m, d]));
      // Decoding (JSON, schema, HMAC, canonical data) of this batch overlaps the previous batch's
      // transaction; the writes themselves stay strictly one after the other.
      const prepared = this.prepare(due.map((d) => d.m), tries);
      await inflight;
      inflight = this.commit(prepared).catch((err: unknown) => {
        // commit() handles its own failures; this is a last guard so the loop never dies.
        this.o.logger.error({ err }, 'batch failed unexpectedly');
        for (const st of prepared.states) st.m.nak(BACKOFF_MS);
      });
    }
    await inflight;
  }

  /** Held messages must not hit ack_wait (JetStream would hand a copy to another recorder). */
  private keepAlive(now: number): void {
    const every = (this.o.ackWaitSeconds * 1000) / 3;
    for (const d of this.deferred) {
      if (now - d.touchedAt >= every) {
        d.m.working();
        d.touchedAt = now;
      }
    }
  }

  private hold(m: JsMsg, prev: Held | undefined, now: number): void {
    const tries = (prev?.tries ?? 0) + 1;
    // Beyond a bound, hand the message back to the server instead of holding it.
    if (this.deferred.length >= this.o.batchSize * 10) {
      m.nak(BACKOFF_MS);
      return;
    }
    this.deferred.push({ m, tries, retryAt: now + Math.min(5 * 2 ** tries, MAX_RETRY_MS), touchedAt: prev?.touchedAt ?? now });
    // the loop may be asleep waiting for new messages: let it schedule the retry
    this.poke();
  }

  /**
   * Decodes the held messages that are due, then queued ones until the batch has `batchSize` events
   * or `batchBytes` of payload (at least one message).
   */
  private prepare(due: JsMsg[], held: Map<JsMsg, Held>): Prepared {
    const started = process.hrtime.bigint();
    const p: Prepared = { started, pending: [], owners: [], indexes: [], states: [], parking: [], held, now: Date.now() };
    let bytes = 0;
    for (const m of due) {
      bytes += m.data.byteLength;
      this.decodeInto(p, m);
    }
    let taken = 0;
    while (taken < this.queue.length && (p.states.length + p.parking.length === 0 || (p.pending.length < this.o.batchSize && bytes + this.queue[taken].data.byteLength <= this.o.batchBytes))) {
      const m = this.queue[taken++];
      bytes += m.data.byteLength;
      this.decodeInto(p, m);
    }
    this.queue.splice(0, taken);
    return p;
  }

  private decodeInto(p: Prepared, m: JsMsg): void {
    const d = decodeMessage(m.data, batchSigOf(m), this.o.eventKey);
    if (!d.ok) {
      p.parking.push(this.parkWhole(m, d.reason, d.detail));
      return;
    }
    if (!d.batch && !d.events[0].ok) {
      p.parking.push(this.parkWhole(m, d.events[0].reason, d.events[0].detail));
      return;
    }
    const st: MsgState = { m, batch: d.batch, deferred: false, parks: [] };
    p.states.push(st);
    d.events.forEach((e, i) => {
      if (!e.ok) {
        st.parks.push(this.park(m, e.reason, e.detail, i));
        return;
      }
      const since = this.deferredSince.get(e.event.id);
      // In-memory wait time, with the delivery count as a backstop when another recorder deferred it.
      const gapExpired = (since !== undefined && p.now - since >= this.o.gapSeconds * 1000) || m.info.deliveryCount > 5 + this.o.gapSeconds;
      p.pending.push({ event: e.event, canonicalData: e.canonicalData, streamSeq: m.seq, gapExpired });
      p.owners.push(st);
      p.indexes.push(i);
    });
  }

  private async commit(p: Prepared): Promise<void> {
    const { started, pending, owners, states, parking, held, now } = p;
    if (pending.length) {
      let outcomes: Outcome[];
      let heads = new Map<string, ChainHead>();
      try {
        const r = await this.o.writer.write(pending);
        outcomes = r.outcomes;
        heads = r.heads;
        this.o.metrics.batches.inc();
        this.o.metrics.batchSize.observe(pending.length);
      } catch (err) {
        if (isDataError(err) && pending.length > 1) {
          this.o.logger.warn({ err }, 'batch rejected by the database; isolating the offending events');
          outcomes = await this.isolate(pending, heads);
        } else if (isDataError(err)) {
          outcomes = [{ kind: 'reject', reason: 'db-rejected', detail: (err as Error).message }];
        } else {
          this.o.metrics.batchErrors.inc();
          this.o.logger.error({ err }, 'batch not written; will be redelivered');
          for (const st of states) st.m.nak(BACKOFF_MS);
          await Promise.all(parking);
          await new Promise((r) => setTimeout(r, BACKOFF_MS / 4));
          return;
        }
      }
      const committed = Date.now();
      const lagsMs: number[] = [];
      outcomes.forEach((o, i) => {
        const st = owners[i];
        const id = pending[i].event.id;
        switch (o.kind) {
          case 'stored': {
            const lag = committed - streamTimeMs(st.m);
            lagsMs.push(lag);
            this.o.metrics.lag.observe(lag / 1000);
            if (o.gap) {
              this.o.metrics.gaps.inc();
              this.o.logger.warn({ chain: o.chain, seq: o.seq }, 'chained across a missing seq after the gap timeout');
            }
            this.deferredSince.delete(id);
            break;
          }
          case 'duplicate':
            this.o.metrics.duplicates.inc();
            this.deferredSince.delete(id);
            break;
          case 'defer': {
            if (!this.deferredSince.has(id)) {
              if (this.deferredSince.size > 100_000) this.deferredSince.clear();
              this.deferredSince.set(id, now);
            }
            this.o.metrics.deferred.inc();
            st.deferred = true;
            break;
          }
          case 'reject':
            this.deferredSince.delete(id);
            st.parks.push(this.park(st.m, o.reason, o.detail, st.batch ? p.indexes[i] : undefined));
            break;
        }
      });
      if (lagsMs.length) {
        this.o.metrics.persisted.inc(lagsMs.length);
        this.o.metrics.lastLag.set(lagsMs[lagsMs.length - 1] / 1000);
        this.o.metrics.batchSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
      }
      if (this.o.logger.isLevelEnabled('debug')) {
        const kinds: Record<string, number> = {};
        for (const o of outcomes) kinds[o.kind] = (kinds[o.kind] ?? 0) + 1;
        this.o.logger.debug({ messages: states.length, events: pending.length, ...kinds }, 'batch written');
      }
      this.o.onBatch({ persisted: lagsMs.length, lagsMs, heads });
    }
    const settling = states.map(async (st) => {
      const parked = await Promise.all(st.parks);
      if (st.deferred) this.hold(st.m, held.get(st.m), Date.now());
      else if (parked.every(Boolean)) st.m.ack();
      else st.m.nak(BACKOFF_MS);
    });
    await Promise.all([...parking, ...settling]);
  }

  /** Writes the events of a batch the database refused one by one, so one bad event cannot block the rest. */
  private async isolate(pending: PendingEvent[], heads: Map<string, ChainHead>): Promise<Outcome[]> {
    const out: Outcome[] = [];
    for (const p of pending) {
      try {
        const r = await this.o.writer.write([p]);
        out.push(r.outcomes[0]);
        for (const [k, v] of r.heads) heads.set(k, v);
      } catch (err) {
        out.push(isDataError(err) ? { kind: 'reject', reason: 'db-rejected', detail: (err as Error).message } : { kind: 'defer' });
      }
    }
    return out;
  }

  /** Parks a whole message, then acks it (NAKs it when the dead-letter publish failed). */
  private async parkWhole(m: JsMsg, reason: DeadLetterReason, detail: string): Promise<void> {
    if (await this.park(m, reason, detail)) m.ack();
    else m.nak(BACKOFF_MS);
  }

  /**
   * Copies a message (with the reason in a header, and the refused event's index for a batch) to
   * the dead-letter subject and counts it. True when parked; the caller acks the original.
   */
  private async park(m: JsMsg, reason: DeadLetterReason, detail: string, batchIndex?: number): Promise<boolean> {
    const h = headers();
    h.set(DEAD_LETTER_HEADERS.reason, reason);
    h.set(DEAD_LETTER_HEADERS.detail, detail.replace(/[\r\n]+/g, ' ').slice(0, 500));
    h.set(DEAD_LETTER_HEADERS.subject, m.subject);
    h.set(DEAD_LETTER_HEADERS.streamSeq, String(m.seq));
    const batchSig = batchSigOf(m);
    if (batchSig !== undefined) h.set(EVENT_BATCH_SIG_HEADER, batchSig);
    if (batchIndex !== undefined) h.set(DEAD_LETTER_HEADERS.batchIndex, String(batchIndex));
    const msgID = `${this.o.names.eventStream}:${m.seq}${batchIndex === undefined ? '' : `:${batchIndex}`}`;
    try {
      await this.o.js.publish(this.o.names.deadLetter, m.data, { headers: h, msgID });
      this.o.metrics.deadLetters.inc({ reason });
      this.o.logger.warn({ reason, detail, subject: m.subject, streamSeq: m.seq, batchIndex }, 'event parked on the dead-letter subject');
      return true;
    } catch (err) {
      this.o.logger.error({ err }, 'dead-letter publish failed; will retry');
      return false;
    }
  }
}
