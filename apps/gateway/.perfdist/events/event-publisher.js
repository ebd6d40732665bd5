import { createHmac, createSecretKey, randomUUID } from 'node:crypto';
import { createInbox, headers } from '@nats-io/transport-node';
import { DiscardPolicy, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { canonicalJson, natsNames } from '@portcullis/protocol';
/** An event could not be persisted on JetStream. */
export class RecordingError extends Error {
    constructor(message, options) {
        super(message, options);
        this.name = 'RecordingError';
    }
}
const TWO_MINUTES_NS = 120 * 1_000_000_000;
/** Ensures the event stream exists (idempotent; an existing stream's config is left as it is). */
export async function ensureEventStream(nc, prefix) {
    const names = natsNames(prefix);
    const jsm = await jetstreamManager(nc);
    try {
        await jsm.streams.info(names.eventStream);
        return;
    }
    catch {
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
    }
    catch (err) {
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
function startsWith(d, prefix) {
    for (let i = 0; i < prefix.length; i++)
        if (d[i] !== prefix[i])
            return false;
    return true;
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
    constructor(nc, prefix, logger, timeoutMs = 5000) {
        this.nc = nc;
        this.logger = logger;
        this.timeoutMs = timeoutMs;
        this.inFlight = new Map();
        this.nextToken = 1;
        this.pendingBytes = 0;
        this.sweepTimer = null;
        this.sub = null;
        this.msgHeaders = headers();
        this.names = natsNames(prefix);
        this.inbox = `${createInbox()}.`;
    }
    /** Subject of one session's events. */
    subjectFor(sessionId) {
        return this.names.sessionEvents(sessionId ?? 'none');
    }
    /** Publishes one signed event and resolves when JetStream has it. */
    publish(event) {
        return new Promise((resolve, reject) => {
            this.send(this.subjectFor(event.sessionId), JSON.stringify(event), event.id, event.type, (err) => (err ? reject(err) : resolve()));
        });
    }
    /**
     * Publishes an already serialised event; `done` is called once: null when persisted, else a
     * RecordingError. Never throws.
     */
    send(subject, body, msgId, type, done) {
        if (this.inFlight.size >= MAX_PENDING_EVENTS || this.pendingBytes + body.length > MAX_PENDING_BYTES) {
            done(new RecordingError(`event ${type} not persisted: too many events awaiting acknowledgement`));
            return;
        }
        this.pendingBytes += body.length;
        this.transmit({ subject, body, msgId, type, attempt: 1, sentAt: 0, done });
    }
    /** Fails everything still awaiting an ack (gateway stopping). */
    close() {
        if (this.sweepTimer)
            clearInterval(this.sweepTimer);
        this.sweepTimer = null;
        this.sub?.unsubscribe();
        this.sub = null;
        for (const [token, f] of this.inFlight)
            this.settle(token, f, new Error('the gateway stopped before the event was acknowledged'));
    }
    transmit(f) {
        if (!this.sub)
            this.subscribe();
        const token = this.nextToken++;
        f.sentAt = Date.now();
        this.inFlight.set(token, f);
        try {
            // One headers object, reused: publish() encodes it before it returns.
            this.msgHeaders.set('Nats-Msg-Id', f.msgId);
            this.nc.publish(f.subject, f.body, { reply: this.inbox + token, headers: this.msgHeaders });
        }
        catch (err) {
            this.settle(token, f, err);
            return;
        }
        if (!this.sweepTimer) {
            this.sweepTimer = setInterval(() => this.sweep(), Math.max(10, Math.min(250, this.timeoutMs / 4)));
            this.sweepTimer.unref();
        }
    }
    subscribe() {
        this.sub = this.nc.subscribe(`${this.inbox}*`, {
            callback: (err, msg) => {
                if (err) {
                    this.logger.warn({ err: err.message }, 'event ack subscription failed');
                    this.sub = null;
                    return;
                }
                const token = Number(msg.subject.slice(this.inbox.length));
                const f = this.inFlight.get(token);
                if (!f)
                    return; // late ack of an attempt already retried or failed
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
                let ack;
                try {
                    ack = msg.json();
                }
                catch {
                    this.retryOrFail(token, f, new Error('invalid ack response'));
                    return;
                }
                if (ack.error)
                    this.retryOrFail(token, f, new Error(ack.error.description ?? `JetStream error ${ack.error.code ?? ''}`));
                else if (!ack.stream)
                    this.retryOrFail(token, f, new Error('invalid ack response'));
                else
                    this.settle(token, f, null);
            },
        });
    }
    retryOrFail(token, f, err) {
        // Limits refusals will not heal by retrying.
        if (f.attempt >= ATTEMPTS || /maximum|exceeded|limit/i.test(err.message)) {
            this.settle(token, f, err);
            return;
        }
        this.inFlight.delete(token);
        f.attempt++;
        this.transmit(f);
    }
    settle(token, f, err) {
        this.inFlight.delete(token);
        this.pendingBytes -= f.body.length;
        f.done(err ? new RecordingError(`event ${f.type} not persisted: ${err.message}`, { cause: err }) : null);
    }
    sweep() {
        if (this.inFlight.size === 0) {
            if (this.sweepTimer)
                clearInterval(this.sweepTimer);
            this.sweepTimer = null;
            return;
        }
        const overdue = Date.now() - this.timeoutMs;
        // Map order is send order: stop at the first one still in time.
        for (const [token, f] of this.inFlight) {
            if (f.sentAt > overdue)
                break;
            this.retryOrFail(token, f, new Error('timed out waiting for the JetStream ack'));
        }
    }
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
const queue = [];
let flushTimer = null;
let flushSoon = false;
function scheduleDrain(urgent) {
    if (urgent || queue.length >= EVENT_FLUSH_AT) {
        if (!flushSoon) {
            flushSoon = true;
            setImmediate(drainQueue);
        }
    }
    else if (!flushTimer && !flushSoon) {
        flushTimer = setTimeout(drainQueue, EVENT_FLUSH_MS);
    }
}
function drainQueue() {
    flushSoon = false;
    if (flushTimer)
        clearTimeout(flushTimer);
    flushTimer = null;
    const batch = queue.splice(0, queue.length);
    for (const e of batch)
        e.recorder.publishQueued(e);
}
/**
 * One session's event sequence: seq 1..n, signed with the event key. Events are published in
 * order on one NATS connection (JetStream stores them in that order); acks come back in the
 * background except where the caller awaits them (session.start).
 * `required`: a failed event makes `onFailure` fire once (the session is then ended).
 */
export class SessionRecorder {
    constructor(publisher, who, eventKey, mode, logger, onFailure) {
        this.publisher = publisher;
        this.who = who;
        this.eventKey = eventKey;
        this.mode = mode;
        this.logger = logger;
        this.onFailure = onFailure;
        this.seq = 0;
        this.failed = false;
        this.outstanding = 0;
        this.waiters = [];
        this.subject = publisher ? publisher.subjectFor(who.sessionId) : null;
        this.hmacKey = createSecretKey(eventKey);
        this.fixedHead = `{"connection":${JSON.stringify(who.connection)},"data":`;
        this.fixedIds = `,"gateway":${JSON.stringify(who.gateway)},"id":`;
    }
    /** Publishes an event; the returned promise resolves when it is persisted (or rejects). */
    record(type, data) {
        return new Promise((resolve, reject) => this.enqueue(type, data, (err) => (err ? reject(err) : resolve())));
    }
    /** Fire and forget (failures go through onFailure/logs). */
    emit(type, data) {
        this.enqueue(type, data, null);
    }
    /** Waits for every event emitted so far to be acked or failed. */
    flush() {
        if (this.outstanding === 0)
            return Promise.resolve();
        return new Promise((resolve) => this.waiters.push(resolve));
    }
    enqueue(type, data, done) {
        this.outstanding++;
        queue.push({ recorder: this, seq: ++this.seq, time: Date.now(), type, data, done });
        scheduleDrain(done !== null);
    }
    /** @internal called by the queue drain */
    publishQueued(e) {
        if (process.env.PERF_NO_EVENTS === '1') { this.settled(e, null); return; }
        if (process.env.PERF_NO_EVENTS === '2') { const id = randomUUID(); this.serialise(id, e); this.settled(e, null); return; }
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
    serialise(id, e) {
        const w = this.who;
        const canonical = `${this.fixedHead}${canonicalJson(e.data)}${this.fixedIds}"${id}","identity":${JSON.stringify(w.identity)},"seq":${e.seq},` +
            `"sessionId":${JSON.stringify(w.sessionId)},"time":"${new Date(e.time).toISOString()}","type":"${e.type}"}`;
        const sig = createHmac('sha256', this.hmacKey).update(canonical).digest('hex');
        return { body: `${canonical.slice(0, -1)},"sig":"${sig}"}`, sig };
    }
    settled(e, err) {
        if (err) {
            if (this.mode === 'required') {
                if (!this.failed) {
                    this.failed = true;
                    this.onFailure(err);
                }
            }
            else {
                this.logger.warn({ err: err.message, type: e.type }, 'session event not recorded (best-effort)');
            }
        }
        e.done?.(err);
        if (--this.outstanding === 0 && this.waiters.length) {
            const w = this.waiters;
            this.waiters = [];
            for (const f of w)
                f();
        }
    }
}
//# sourceMappingURL=event-publisher.js.map