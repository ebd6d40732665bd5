import { createHmac, createSecretKey, randomUUID, type KeyObject } from 'node:crypto';
import { createInbox, headers, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { DiscardPolicy, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { canonicalJson, natsNames, type WireEvent } from '@portcullis/protocol';
import type { Logger } from '../logger.js';

export type SessionEventType = 'session.start' | 'query' | 'decision' | 'result' | 'approval.requested' | 'approval.decided' | 'session.end';

/** An event could not be persisted on JetStream. */
export class RecordingError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RecordingError';
  }
}

const TWO_MINUTES_NS = 120 * 1_000_000_000;

/** Ensures the event stream exists (idempotent; an existing stream's config is left as it is). */
export async function ensureEventStream(nc: NatsConnection, prefix: string): Promise<void> {
  const names = natsNames(prefix);
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(names.eventStream);
    return;
  } catch {
    // not found: create below
  }
  try {
    await jsm.streams.add({
      name: names.eventStream,
      subjects: [names.eventsAll],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      duplicate_window: TWO_MINUTES_NS,
    });
  } catch (err) {
    // Another app may have created it meanwhile.
    await jsm.streams.info(names.eventStream).catch(() => {
      throw err;
    });
  }
}

/** Events whose ack is outstanding beyond these caps fail at once (required sessions then end: fail closed). */
const MAX_PENDING_EVENTS = 100_000;
const MAX_PENDING_BYTES = 64 * 1024 * 1024;
const ATTEMPTS = 2;
const STREAM_ACK = Buffer.from('{"stream":');

function startsWith(d: Uint8Array, prefix: Buffer): boolean {
  for (let i = 0; i < prefix.length; i++) if (d[i] !== prefix[i]) return false;
  return true;
}

interface InFlight {
  subject: string;
  body: string;
  msgId: string;
  type: string;
  attempt: number;
  sentAt: number;
  done: (err: Error | null) => void;
}

/**
 * Publishes session events on JetStream, pipelined: each event is one core-NATS publish with a
 * reply subject on one shared inbox subscription, and JetStream's PubAck (or error) comes back on it.
 * Nothing is awaited per event and no per-event timer, promise or stack-capturing error is made
 * (nats.js `js.publish` is a full request per event: a RequestError + TimeoutError for async stack
 * traces, a timer, a promise chain — that was most of the gateway's CPU per statement). Acks are
 * matched by token; one sweep timer fails or retries (same msgID: JetStream dedups) what is overdue.
 * Publishes on one connection reach the stream in the order they were made.
 */
export class EventPublisher {
  private readonly names;
  private readonly inbox: string;
  private readonly inFlight = new Map<number, InFlight>();
  private nextToken = 1;
  private pendingBytes = 0;
  private sweepTimer: NodeJS.Timeout | null = null;
  private sub: Subscription | null = null;
  private readonly msgHeaders = headers();

  constructor(
    private readonly nc: NatsConnection,
    prefix: string,
    private readonly logger: Logger,
    private readonly timeoutMs = 5000,
  ) {
    this.names = natsNames(prefix);
    this.inbox = `${createInbox()}.`;
  }

  /** Subject of one session's events. */
  subjectFor(sessionId: string | null): string {
    return this.names.sessionEvents(sessionId ?? 'none');
  }

  /** Publishes one signed event and resolves when JetStream has it. */
  publish(event: WireEvent): Promise<void> {
    return new Promise((resolve, reject) => {
      this.send(this.subjectFor(event.sessionId), JSON.stringify(event), event.id, event.type, (err) => (err ? reject(err) : resolve()));
    });
  }

  /**
   * Publishes an already serialised event; `done` is called once: null when persisted, else a
   * RecordingError. Never throws.
   */
  send(subject: string, body: string, msgId: string, type: string, done: (err: Error | null) => void): void {
    if (this.inFlight.size >= MAX_PENDING_EVENTS || this.pendingBytes + body.length > MAX_PENDING_BYTES) {
      done(new RecordingError(`event ${type} not persisted: too many events awaiting acknowledgement`));
      return;
    }
    this.pendingBytes += body.length;
    this.transmit({ subject, body, msgId, type, attempt: 1, sentAt: 0, done });
  }

  /** Fails everything still awaiting an ack (gateway stopping). */
  close(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.sub?.unsubscribe();
    this.sub = null;
    for (const [token, f] of this.inFlight) this.settle(token, f, new Error('the gateway stopped before the event was acknowledged'));
  }

  private transmit(f: InFlight): void {
    if (!this.sub) this.subscribe();
    const token = this.nextToken++;
    f.sentAt = Date.now();
    this.inFlight.set(token, f);
    try {
      // One headers object, reused: publish() encodes it before it returns.
      this.msgHeaders.set('Nats-Msg-Id', f.msgId);
      this.nc.publish(f.subject, f.body, { reply: this.inbox + token, headers: this.msgHeaders });
    } catch (err) {
      this.settle(token, f, err as Error);
      return;
    }
    if (!this.sweepTimer) {
      this.sweepTimer = setInterval(() => this.sweep(), Math.max(10, Math.min(250, this.timeoutMs / 4)));
      this.sweepTimer.unref();
    }
  }

  private subscribe(): void {
    this.sub = this.nc.subscribe(`${this.inbox}*`, {
      callback: (err, msg) => {
        if (err) {
          this.logger.warn({ err: err.message }, 'event ack subscription failed');
          this.sub = null;
          return;
        }
        const token = Number(msg.subject.slice(this.inbox.length));
        const f = this.inFlight.get(token);
        if (!f) return; // late ack of an attempt already retried or failed
        // A PubAck is `{"stream":...}`; an error is `{"error":{...}...}` (the error member comes first).
        const d = msg.data;
        if (d.length > 10 && d[0] === 0x7b && d[2] === 0x73 && startsWith(d, STREAM_ACK)) {
          this.settle(token, f, null);
          return;
        }
        if (msg.headers?.code === 503) {
          this.retryOrFail(token, f, new Error('no responders: the event stream does not exist'));
          return;
        }
        let ack: { stream?: string; error?: { description?: string; code?: number } };
        try {
          ack = msg.json();
        } catch {
          this.retryOrFail(token, f, new Error('invalid ack response'));
          return;
        }
        if (ack.error) this.retryOrFail(token, f, new Error(ack.error.description ?? `JetStream error ${ack.error.code ?? ''}`));
        else if (!ack.stream) this.retryOrFail(token, f, new Error('invalid ack response'));
        else this.settle(token, f, null);
      },
    });
  }

  private retryOrFail(token: number, f: InFlight, err: Error): void {
    // Limits refusals will not heal by retrying.
    if (f.attempt >= ATTEMPTS || /maximum|exceeded|limit/i.test(err.message)) {
      this.settle(token, f, err);
      return;
    }
    this.inFlight.delete(token);
    f.attempt++;
    this.transmit(f);
  }

  private settle(token: number, f: InFlight, err: Error | null): void {
    this.inFlight.delete(token);
    this.pendingBytes -= f.body.length;
    f.done(err ? new RecordingError(`event ${f.type} not persisted: ${err.message}`, { cause: err }) : null);
  }

  private sweep(): void {
    if (this.inFlight.size === 0) {
      if (this.sweepTimer) clearInterval(this.sweepTimer);
      this.sweepTimer = null;
      return;
    }
    const overdue = Date.now() - this.timeoutMs;
    // Map order is send order: stop at the first one still in time.
    for (const [token, f] of this.inFlight) {
      if (f.sentAt > overdue) break;
      this.retryOrFail(token, f, new Error('timed out waiting for the JetStream ack'));
    }
  }
}

export interface SessionIdentity {
  sessionId: string;
  identity: string;
  connection: string;
  gateway: string;
}

interface QueuedEvent {
  recorder: SessionRecorder;
  seq: number;
  time: number;
  type: SessionEventType;
  data: Record<string, unknown>;
  done: ((err: Error | null) => void) | null;
}

/**
 * Events emitted on the relay's hot path are only queued there. Every EVENT_FLUSH_MS they are signed,
 * serialised and published together: the NATS connection then gets one write (and JetStream answers
 * with one burst of acks) per flush instead of per statement. On a busy host each write that wakes
 * another process costs far more than the bytes it carries, and the statement's own replies have
 * already gone out, so recording adds no latency to it. An awaited record() (session.start) or a
 * full batch flushes at the next turn of the event loop.
 */
const EVENT_FLUSH_MS = 2;
const EVENT_FLUSH_AT = 256;
const queue: QueuedEvent[] = [];
let flushTimer: NodeJS.Timeout | null = null;
let flushSoon = false;

function scheduleDrain(urgent: boolean): void {
  if (urgent || queue.length >= EVENT_FLUSH_AT) {
    if (!flushSoon) {
      flushSoon = true;
      setImmediate(drainQueue);
    }
  } else if (!flushTimer && !flushSoon) {
    flushTimer = setTimeout(drainQueue, EVENT_FLUSH_MS);
  }
}

function drainQueue(): void {
  flushSoon = false;
  if (flushTimer) clearTimeout(flushTimer);
  flushTimer = null;
  const batch = queue.splice(0, queue.length);
  for (const e of batch) e.recorder.publishQueued(e);
}

/**
 * One session's event sequence: seq 1..n, signed with the event key. Events are published in
 * order on one NATS connection (JetStream stores them in that order); acks come back in the
 * background except where the caller awaits them (session.start).
 * `required`: a failed event makes `onFailure` fire once (the session is then ended).
 */
export class SessionRecorder {
  private seq = 0;
  private failed = false;
  private outstanding = 0;
  private waiters: (() => void)[] = [];
  private readonly subject: string | null;
  /** canonical JSON of the members that are the same in every event of the session */
  private readonly fixedHead: string;
  private readonly fixedIds: string;
  private readonly hmacKey: KeyObject;

  constructor(
    private readonly publisher: EventPublisher | null,
    private readonly who: SessionIdentity,
    private readonly eventKey: Buffer,
    readonly mode: 'required' | 'best-effort',
    private readonly logger: Logger,
    private readonly onFailure: (err: Error) => void,
  ) {
    this.subject = publisher ? publisher.subjectFor(who.sessionId) : null;
    this.hmacKey = createSecretKey(eventKey);
    this.fixedHead = `{"connection":${JSON.stringify(who.connection)},"data":`;
    this.fixedIds = `,"gateway":${JSON.stringify(who.gateway)},"id":`;
  }

  /** Publishes an event; the returned promise resolves when it is persisted (or rejects). */
  record(type: SessionEventType, data: Record<string, unknown>): Promise<void> {
    return new Promise((resolve, reject) => this.enqueue(type, data, (err) => (err ? reject(err) : resolve())));
  }

  /** Fire and forget (failures go through onFailure/logs). */
  emit(type: SessionEventType, data: Record<string, unknown>): void {
    this.enqueue(type, data, null);
  }

  /** Waits for every event emitted so far to be acked or failed. */
  flush(): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private enqueue(type: SessionEventType, data: Record<string, unknown>, done: QueuedEvent['done']): void {
    this.outstanding++;
    queue.push({ recorder: this, seq: ++this.seq, time: Date.now(), type, data, done });
    scheduleDrain(done !== null);
  }

  /** @internal called by the queue drain */
  publishQueued(e: QueuedEvent): void {
    const id = randomUUID();
    const { body } = this.serialise(id, e);
    if (!this.publisher || !this.subject) {
      this.settled(e, new RecordingError('event stream unavailable (not connected to NATS)'));
      return;
    }
    this.publisher.send(this.subject, body, id, e.type, (err) => this.settled(e, err));
  }

  /**
   * The signed wire event as JSON: the canonical JSON of the event without `sig` (what the HMAC
   * covers, protocol `signEvent`) with `sig` appended. Built by hand for the fixed members; `data`
   * goes through canonicalJson.
   */
  serialise(id: string, e: Pick<QueuedEvent, 'seq' | 'time' | 'type' | 'data'>): { body: string; sig: string } {
    const w = this.who;
    const canonical =
      `${this.fixedHead}${canonicalJson(e.data)}${this.fixedIds}"${id}","identity":${JSON.stringify(w.identity)},"seq":${e.seq},` +
      `"sessionId":${JSON.stringify(w.sessionId)},"time":"${new Date(e.time).toISOString()}","type":"${e.type}"}`;
    const sig = createHmac('sha256', this.hmacKey).update(canonical).digest('hex');
    return { body: `${canonical.slice(0, -1)},"sig":"${sig}"}`, sig };
  }

  private settled(e: QueuedEvent, err: Error | null): void {
    if (err) {
      if (this.mode === 'required') {
        if (!this.failed) {
          this.failed = true;
          this.onFailure(err);
        }
      } else {
        this.logger.warn({ err: err.message, type: e.type }, 'session event not recorded (best-effort)');
      }
    }
    e.done?.(err);
    if (--this.outstanding === 0 && this.waiters.length) {
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    }
  }
}
