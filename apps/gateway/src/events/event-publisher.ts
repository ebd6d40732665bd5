import { createHmac, createSecretKey, randomUUID, type KeyObject } from 'node:crypto';
import { createInbox, headers, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { canonicalJsonFast, ensureStream, eventStreamSettings, EVENT_BATCH_SIG_HEADER, EVENT_PARTITIONS, eventPartition, MAX_EVENT_BATCH_BYTES, MAX_EVENT_BATCH_EVENTS, natsNames, type SESSION_EVENT_TYPES } from '@portcullis/protocol';
import type { Logger } from '../logger.js';

/** The session event types of libs/protocol (the recorder's schema): one list for every protocol module. */
export type SessionEventType = (typeof SESSION_EVENT_TYPES)[number];

/** An event could not be persisted on JetStream. */
export class RecordingError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RecordingError';
  }
}

/** Ensures the event stream exists (idempotent; an existing stream's config is left as it is). */
export async function ensureEventStream(nc: NatsConnection, prefix: string): Promise<void> {
  await ensureStream(await jetstreamManager(nc), eventStreamSettings(natsNames(prefix)));
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
  /** UTF-8 bytes: built once, hashed and published as they are (no string of the whole batch) */
  body: Buffer;
  msgId: string;
  /** Portcullis-Batch-Sig: HMAC of the body */
  batchSig: string;
  /** events carried (for the pending cap and messages) */
  events: number;
  attempt: number;
  sentAt: number;
  done: (err: Error | null) => void;
}

/**
 * Publishes session events on JetStream, pipelined: each message (normally a batch of events of
 * many sessions, libs/protocol event-batch.ts) is one core-NATS publish with a reply subject on one
 * shared inbox subscription, and JetStream's PubAck (or error) comes back on it. Nothing is awaited
 * per message and no per-message timer, promise or stack-capturing error is made (nats.js
 * `js.publish` is a full request each time: a RequestError + TimeoutError for async stack traces, a
 * timer, a promise chain). Acks are matched by token; one sweep timer fails or retries (same msgID:
 * JetStream dedups) what is overdue. Publishes on one connection reach the stream in the order
 * they were made.
 */
export class EventPublisher {
  private readonly inbox: string;
  private readonly inFlight = new Map<number, InFlight>();
  private nextToken = 1;
  private pendingBytes = 0;
  private pendingEvents = 0;
  private sweepTimer: NodeJS.Timeout | null = null;
  private sub: Subscription | null = null;
  private readonly msgHeaders = headers();
  /** subjects of this gateway's event batches, by partition (libs/protocol eventPartition) */
  readonly batchSubjects: string[];
  /** running totals, read by the metrics at scrape time */
  readonly counts = { messages: 0, events: 0, failedEvents: 0 };

  constructor(
    private readonly nc: NatsConnection,
    prefix: string,
    private readonly logger: Logger,
    private readonly timeoutMs = 5000,
    gatewayId = 'gateway',
  ) {
    this.inbox = `${createInbox()}.`;
    const names = natsNames(prefix);
    this.batchSubjects = Array.from({ length: EVENT_PARTITIONS }, (_, p) => names.gatewayEvents(gatewayId, p));
  }

  /**
   * Publishes a batch body (a JSON array of unsigned wire events of sessions of one partition) with
   * its HMAC; `done` is called once for the whole batch. Never throws.
   */
  sendBatch(body: Buffer, sig: string, events: number, done: (err: Error | null) => void, partition = 0): void {
    const msgId = randomUUID();
    this.enqueue({ subject: this.batchSubjects[partition] ?? this.batchSubjects[0], body, msgId, batchSig: sig, events, attempt: 1, sentAt: 0, done });
  }

  /** Fails everything still awaiting an ack (gateway stopping). */
  close(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.sub?.unsubscribe();
    this.sub = null;
    for (const [token, f] of this.inFlight) this.settle(token, f, new Error('the gateway stopped before the event was acknowledged'));
  }

  private enqueue(f: InFlight): void {
    if (this.pendingEvents + f.events > MAX_PENDING_EVENTS || this.pendingBytes + f.body.length > MAX_PENDING_BYTES) {
      this.counts.failedEvents += f.events;
      f.done(new RecordingError(`${f.events} event(s) not persisted: too many events awaiting acknowledgement`));
      return;
    }
    this.pendingBytes += f.body.length;
    this.pendingEvents += f.events;
    this.transmit(f);
  }

  private transmit(f: InFlight): void {
    if (!this.sub) this.subscribe();
    const token = this.nextToken++;
    f.sentAt = Date.now();
    this.inFlight.set(token, f);
    try {
      // One headers object, reused: publish() encodes it before it returns.
      this.msgHeaders.set(EVENT_BATCH_SIG_HEADER, f.batchSig);
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
    this.pendingEvents -= f.events;
    if (err) this.counts.failedEvents += f.events;
    else {
      this.counts.messages++;
      this.counts.events += f.events;
    }
    f.done(err ? new RecordingError(`${f.events} event(s) not persisted: ${err.message}`, { cause: err }) : null);
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
  /** the event's data, or its canonical JSON already (emitJson) */
  data: Record<string, unknown> | string;
  done: ((err: Error | null) => void) | null;
}

/**
 * Events emitted on the relay's hot path are only queued there. Every flush interval the queue
 * (events of every session of this gateway) is serialised and published as batch messages
 * (libs/protocol event-batch.ts: one body, one HMAC, one JetStream message and one ack for many
 * events). On a busy host each message costs far more than the bytes it carries — the write that
 * wakes nats-server, its JetStream store and ack, the ack read and the timer wake-up here — and the
 * statement's own replies have already gone out, so the interval adds no latency to statements:
 * it is how late events reach the stream (docs/performance.md measured 2 ms against 20 ms).
 * An awaited record() (session.start) or a full queue flushes at the next turn of the event loop.
 */
export const DEFAULT_EVENT_FLUSH_MS = 20;
/** Bounds of the flush interval (GATEWAY_EVENT_FLUSH_MS), in ms */
export const EVENT_FLUSH_MS_MIN = 1;
export const EVENT_FLUSH_MS_MAX = 1000;
const EVENT_FLUSH_AT = 1024;
let flushMs = DEFAULT_EVENT_FLUSH_MS;
const queue: QueuedEvent[] = [];
let flushTimer: NodeJS.Timeout | null = null;
let flushSoon = false;

/**
 * Sets how long queued events may wait before they are published (GATEWAY_EVENT_FLUSH_MS). The
 * queue is per process: every gateway in it shares the last value set.
 */
export function setEventFlushInterval(ms: number): void {
  if (!Number.isInteger(ms) || ms < EVENT_FLUSH_MS_MIN || ms > EVENT_FLUSH_MS_MAX) {
    throw new RangeError(`event flush interval must be ${EVENT_FLUSH_MS_MIN}..${EVENT_FLUSH_MS_MAX} ms, got ${ms}`);
  }
  flushMs = ms;
}

function scheduleDrain(urgent: boolean): void {
  if (urgent || queue.length >= EVENT_FLUSH_AT) {
    if (!flushSoon) {
      flushSoon = true;
      setImmediate(drainQueue);
    }
  } else if (!flushTimer && !flushSoon) {
    flushTimer = setTimeout(drainQueue, flushMs);
  }
}

/**
 * One KeyObject per event key, shared by every session signed with it: batches are grouped by key
 * identity, so sessions holding their own KeyObject of the same key would each get their own batch.
 * Keys change only on rotation; the map is cleared if it ever grows past a few.
 */
const keyObjects = new Map<string, KeyObject>();
function eventKeyObject(key: Buffer): KeyObject {
  const hex = key.toString('hex');
  let k = keyObjects.get(hex);
  if (!k) {
    if (keyObjects.size >= 8) keyObjects.clear();
    keyObjects.set(hex, (k = createSecretKey(key)));
  }
  return k;
}

/** Events of one flush mostly share their millisecond: format each one once. */
let lastMs = -1;
let lastIso = '';
function isoTime(ms: number): string {
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

/** Events bound for one publisher under one event key, being assembled into batch bodies. */
class BatchBuilder {
  private parts: string[] = [];
  private events: QueuedEvent[] = [];
  private bytes = 2;

  constructor(
    private readonly publisher: EventPublisher,
    private readonly key: KeyObject,
    private readonly partition: number,
  ) {}

  add(e: QueuedEvent, json: string): void {
    // UTF-8 bytes, not string length: the cap is on what goes over the wire
    const size = Buffer.byteLength(json, 'utf8') + 1;
    if (this.events.length && (this.bytes + size > MAX_EVENT_BATCH_BYTES || this.events.length >= MAX_EVENT_BATCH_EVENTS)) this.send();
    this.parts.push(json);
    this.events.push(e);
    this.bytes += size;
  }

  send(): void {
    if (!this.events.length) return;
    const events = this.events;
    const parts = this.parts;
    // `[a,b,c]` written straight into bytes: a batch string would be a large (old-space) object for
    // the GC, and be encoded again for the HMAC and again by the publish.
    const body = Buffer.allocUnsafe(this.bytes - 1);
    body[0] = 0x5b; // [
    let pos = 1;
    for (let i = 0; i < parts.length; i++) {
      if (i > 0) body[pos++] = 0x2c; // ,
      pos += body.write(parts[i], pos, 'utf8');
    }
    body[pos] = 0x5d; // ]
    this.parts = [];
    this.events = [];
    this.bytes = 2;
    const sig = createHmac('sha256', this.key).update(body).digest('hex');
    this.publisher.sendBatch(body, sig, events.length, (err) => {
      for (const e of events) e.recorder.settled(e, err);
    }, this.partition);
  }
}

function drainQueue(): void {
  flushSoon = false;
  if (flushTimer) clearTimeout(flushTimer);
  flushTimer = null;
  const batch = queue.splice(0, queue.length);
  // One builder per publisher, event key (a key rotation briefly makes two) and partition in use:
  // a batch holds the sessions of one partition, so the recorder that owns it gets all of them.
  const builders = new Map<EventPublisher, Map<KeyObject, BatchBuilder[]>>();
  for (const e of batch) {
    const r = e.recorder;
    const publisher = r.publisherOrNull();
    if (!publisher) {
      r.settled(e, new RecordingError('event stream unavailable (not connected to NATS)'));
      continue;
    }
    let byKey = builders.get(publisher);
    if (!byKey) builders.set(publisher, (byKey = new Map()));
    let parts = byKey.get(r.key);
    if (!parts) byKey.set(r.key, (parts = new Array<BatchBuilder>(EVENT_PARTITIONS)));
    const b = (parts[r.partition] ??= new BatchBuilder(publisher, r.key, r.partition));
    b.add(e, r.canonical(randomUUID(), e));
  }
  for (const byKey of builders.values()) for (const parts of byKey.values()) for (const b of parts) b?.send();
}

/**
 * One session's event sequence: seq 1..n, signed with the event key (per batch). Events are published in
 * order on one NATS connection (JetStream stores them in that order); acks come back in the
 * background except where the caller awaits them (session.start).
 * `required`: a failed event makes `onFailure` fire once (the session is then ended).
 */
export class SessionRecorder {
  private seq = 0;
  private failed = false;
  private outstanding = 0;
  private waiters: (() => void)[] = [];
  /** canonical JSON of the members that are the same in every event of the session */
  private readonly fixedHead: string;
  private readonly fixedIds: string;
  private readonly fixedIdentity: string;
  private readonly fixedSession: string;
  /** @internal the event key, as a KeyObject (also groups batches by key) */
  readonly key: KeyObject;
  /** @internal the session's event partition (groups batches by partition) */
  readonly partition: number;

  constructor(
    private readonly publisher: EventPublisher | null,
    private readonly who: SessionIdentity,
    eventKey: Buffer,
    readonly mode: 'required' | 'best-effort',
    private readonly logger: Logger,
    private readonly onFailure: (err: Error) => void,
  ) {
    this.key = eventKeyObject(eventKey);
    this.partition = eventPartition(who.sessionId);
    this.fixedHead = `{"connection":${JSON.stringify(who.connection)},"data":`;
    this.fixedIds = `,"gateway":${JSON.stringify(who.gateway)},"id":`;
    this.fixedIdentity = `","identity":${JSON.stringify(who.identity)},"seq":`;
    this.fixedSession = `,"sessionId":${JSON.stringify(who.sessionId)},"time":"`;
  }

  /** Publishes an event; the returned promise resolves when it is persisted (or rejects). */
  record(type: SessionEventType, data: Record<string, unknown>): Promise<void> {
    return new Promise((resolve, reject) => this.enqueue(type, data, (err) => (err ? reject(err) : resolve())));
  }

  /** Fire and forget (failures go through onFailure/logs). */
  emit(type: SessionEventType, data: Record<string, unknown>): void {
    this.enqueue(type, data, null);
  }

  /**
   * Fire and forget, with the data given as its canonical JSON already (event-json.ts builds it
   * for the per-statement events, faster than the generic serialiser). `at`: the event's time (ms
   * since the epoch) when it is not now.
   */
  emitJson(type: SessionEventType, canonicalData: string, at?: number): void {
    this.enqueue(type, canonicalData, null, at);
  }

  /** Waits for every event emitted so far to be acked or failed. */
  flush(): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private enqueue(type: SessionEventType, data: Record<string, unknown> | string, done: QueuedEvent['done'], at?: number): void {
    this.outstanding++;
    queue.push({ recorder: this, seq: ++this.seq, time: at ?? Date.now(), type, data, done });
    scheduleDrain(done !== null);
  }

  /** @internal the publisher events go to, null when NATS is not available */
  publisherOrNull(): EventPublisher | null {
    return this.publisher;
  }

  /**
   * The event as it goes into a batch: the canonical JSON of the unsigned wire event (what
   * protocol `signEvent` would sign). Built by hand for the fixed members; `data` goes through
   * canonicalJson.
   */
  canonical(id: string, e: Pick<QueuedEvent, 'seq' | 'time' | 'type' | 'data'>): string {
    const data = typeof e.data === 'string' ? e.data : canonicalJsonFast(e.data);
    return `${this.fixedHead}${data}${this.fixedIds}"${id}${this.fixedIdentity}${e.seq}${this.fixedSession}${isoTime(e.time)}","type":"${e.type}"}`;
  }

  /** @internal called once per event by the queue drain */
  settled(e: QueuedEvent, err: Error | null): void {
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
