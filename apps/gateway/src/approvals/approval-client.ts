import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { Counter, Histogram, Registry } from 'prom-client';
import {
  APPROVALS_QUEUE, approvalJobSchema, approvalSubjects, natsNames, signApprovalMessage,
  type ApprovalCancel, type ApprovalConsumeRequest, type ApprovalDecision, type ApprovalJob, type ApprovalRequested,
} from '@portcullis/protocol';
import type { Logger } from '../logger.js';
import { DecisionVerifier, ForgedMessageError } from './decision-verifier.js';

/** The approval could not be requested (Redis or NATS unreachable, no event key yet): fail closed. */
export class ApprovalUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ApprovalUnavailableError';
  }
}

export interface ApprovalClientOptions {
  nc: NatsConnection;
  natsPrefix: string;
  redisUrl: string;
  /** BullMQ key prefix (env APPROVALS_QUEUE_PREFIX, default `bull`) */
  queuePrefix?: string;
  /** the snapshot's verificationKeys (read on every use) */
  verificationKeys: () => readonly Record<string, unknown>[];
  /** the event key from the snapshot: HMAC of cancel/consume messages (null while there is no config) */
  gatewayKey: () => Buffer | null;
  log: Logger;
  registry?: Registry;
  /** how long past the policy's timeoutSeconds the gateway waits before it fails closed (default 5 s) */
  graceSeconds?: number;
  enqueueTimeoutMs?: number;
  consumeTimeoutMs?: number;
}

interface InFlight {
  job: ApprovalJob;
  /** a one-time job is only remembered until it would have expired (re-enqueue after a Redis restart) */
  until: number;
}

/**
 * The gateway's side of approvals. `requestAndWait` holds one statement: it subscribes to the decision
 * subject first (so a fast decision cannot slip past), enqueues the job, and resolves with the first
 * decision that verifies against the snapshot's keys — anything else on the subject is logged, counted
 * and ignored. Abort (client gone) cancels the approval; no decision by timeoutSeconds + grace fails
 * closed as expired.
 *
 * Redis restarts: the approvals app persists each job in Postgres as soon as it takes it. A job that
 * Redis lost before that (restart without persistence) is re-enqueued here whenever the Redis
 * connection becomes ready again, for every approval still held or recently failed fast; the approvals
 * app's persist is idempotent by approval id, and for an already decided approval it republishes the
 * decision, which also covers a decision this gateway missed.
 */
export class ApprovalClient {
  private readonly names: ReturnType<typeof natsNames>;
  private readonly subjects: ReturnType<typeof approvalSubjects>;
  private readonly verifier: DecisionVerifier;
  private readonly redis: Redis;
  private readonly queue: Queue;
  private readonly inflight = new Map<string, InFlight>();
  private readonly metrics: {
    requested: Counter<'mode'>;
    outcomes: Counter<'status'>;
    forged: Counter;
    reenqueued: Counter;
    wait: Histogram;
  };
  private readyOnce = false;
  private closed = false;

  constructor(private readonly o: ApprovalClientOptions) {
    this.names = natsNames(o.natsPrefix);
    this.subjects = approvalSubjects(o.natsPrefix);
    this.verifier = new DecisionVerifier(o.verificationKeys);
    this.redis = new Redis(o.redisUrl, { maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(n * 100, 2000), lazyConnect: false });
    this.redis.on('error', (err) => o.log.debug({ err: err.message }, 'approvals redis error'));
    this.redis.on('ready', () => {
      if (this.readyOnce) void this.reenqueue();
      this.readyOnce = true;
    });
    this.queue = new Queue(APPROVALS_QUEUE, { connection: this.redis, prefix: o.queuePrefix ?? 'bull' });
    this.queue.on('error', (err) => o.log.debug({ err: err.message }, 'approvals queue error'));
    const registers = [o.registry ?? new Registry()];
    this.metrics = {
      requested: new Counter({ name: 'portcullis_gateway_approvals_requested_total', help: 'Approvals requested, by mode', labelNames: ['mode'], registers }),
      outcomes: new Counter({ name: 'portcullis_gateway_approvals_outcomes_total', help: 'Held statements by outcome', labelNames: ['status'], registers }),
      forged: new Counter({ name: 'portcullis_gateway_approvals_forged_total', help: 'Messages on approval subjects that failed verification (ignored)', registers }),
      reenqueued: new Counter({ name: 'portcullis_gateway_approvals_reenqueued_total', help: 'Approval jobs enqueued again after Redis came back', registers }),
      wait: new Histogram({ name: 'portcullis_gateway_approval_wait_seconds', help: 'Time a statement was held', buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600], registers }),
    };
  }

  /** Waits for Redis (bounded); the client also works when Redis comes up later. */
  async start(timeoutMs = 5000): Promise<void> {
    await withTimeout(this.queue.waitUntilReady(), timeoutMs, 'redis not ready').catch((err: Error) => this.o.log.warn({ err: err.message }, 'approvals queue not ready yet'));
  }

  /** Holds until a verified decision, an abort (→ cancelled) or timeoutSeconds + grace (→ expired). */
  async requestAndWait(job: ApprovalJob, opts: { signal?: AbortSignal } = {}): Promise<ApprovalDecision> {
    approvalJobSchema.parse(job);
    if (opts.signal?.aborted) return this.synthetic(job, 'cancelled', 'client disconnected before the approval was requested');
    const started = Date.now();
    let settle!: (d: ApprovalDecision) => void;
    const done = new Promise<ApprovalDecision>((resolve) => { settle = resolve; });
    let finished = false;
    const finish = (d: ApprovalDecision) => {
      if (finished) return;
      finished = true;
      settle(d);
    };
    let sub: Subscription;
    try {
      sub = this.o.nc.subscribe(this.names.approvalDecision(job.approvalId), {
        callback: (err, msg) => {
          if (err) return;
          this.verifier.decision(msg.data, job.approvalId).then(finish, (e: unknown) => {
            this.metrics.forged.inc();
            this.o.log.warn({ approvalId: job.approvalId, err: e instanceof Error ? e.message : String(e) }, 'ignored approval decision: not signed by the api');
          });
        },
      });
      // The server must know the subscription before anyone can decide.
      await withTimeout(this.o.nc.flush(), 3000, 'nats flush timed out');
    } catch (err) {
      throw new ApprovalUnavailableError('cannot listen for approval decisions (NATS unavailable)', { cause: err });
    }
    const onAbort = () => {
      this.cancel(job, 'client-disconnected');
      finish(this.synthetic(job, 'cancelled', 'client disconnected while the statement was held'));
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => {
      this.cancel(job, 'gateway-timeout');
      finish(this.synthetic(job, 'expired', 'no decision before the approval timed out'));
    }, (job.timeoutSeconds + (this.o.graceSeconds ?? 5)) * 1000);
    this.inflight.set(job.approvalId, { job, until: Number.POSITIVE_INFINITY });
    try {
      try {
        await this.enqueue(job);
      } catch (err) {
        if (finished) return await done; // decided or aborted meanwhile
        this.cancel(job, 'enqueue-failed');
        throw err;
      }
      this.announce(job);
      const decision = await done;
      this.metrics.outcomes.inc({ status: decision.status });
      this.metrics.wait.observe((Date.now() - started) / 1000);
      return decision;
    } finally {
      finished = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      sub.unsubscribe();
      this.inflight.delete(job.approvalId);
    }
  }

  /** Fail-fast mode: enqueue a one-time approval and return at once. */
  async requestOneTime(job: ApprovalJob): Promise<void> {
    approvalJobSchema.parse(job);
    if (job.mode !== 'one-time') throw new TypeError('requestOneTime needs a job with mode one-time');
    this.inflight.set(job.approvalId, { job, until: Date.now() + job.timeoutSeconds * 1000 });
    try {
      await this.enqueue(job);
    } catch (err) {
      this.inflight.delete(job.approvalId);
      this.cancel(job, 'enqueue-failed');
      throw err;
    }
    this.announce(job);
  }

  /**
   * Consumes an approved one-time approval of this identity for the identical statement (same fingerprint).
   * Returns its id, or null (none, or the approvals app did not answer: fail closed).
   */
  async consumeOneTime(q: { identity: string; connection: string; fingerprint: string }): Promise<string | null> {
    const key = this.o.gatewayKey();
    if (!key) return null;
    const nonce = randomBytes(16).toString('hex');
    const req = signApprovalMessage<ApprovalConsumeRequest>({ typ: 'approval-consume', ...q, nonce }, key);
    try {
      const reply = await this.o.nc.request(this.subjects.consume, JSON.stringify(req), { timeout: this.o.consumeTimeoutMs ?? 2000 });
      const r = await this.verifier.consumeResult(reply.data, nonce);
      return r.approvalId;
    } catch (err) {
      if (err instanceof ForgedMessageError) {
        this.metrics.forged.inc();
        this.o.log.warn({ err: err.message }, 'ignored one-time approval reply: not signed by the api');
      } else {
        this.o.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'one-time approval lookup failed');
      }
      return null;
    }
  }

  /** Stops: every held approval is cancelled (its session goes with this gateway). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const { job } of this.inflight.values()) if (job.mode === 'wait') this.cancel(job, 'gateway-shutdown');
    await this.o.nc.flush().catch(() => undefined);
    await this.queue.close().catch(() => undefined);
    this.redis.disconnect();
  }

  private async enqueue(job: ApprovalJob): Promise<void> {
    this.metrics.requested.inc({ mode: job.mode });
    try {
      await withTimeout(
        this.queue.add('approval', job, { jobId: job.approvalId, attempts: 10, backoff: { type: 'exponential', delay: 500 }, removeOnComplete: true, removeOnFail: 1000 }),
        this.o.enqueueTimeoutMs ?? 5000,
        'enqueue timed out',
      );
    } catch (err) {
      throw new ApprovalUnavailableError('cannot queue the approval (Redis unavailable)', { cause: err });
    }
  }

  private async reenqueue(): Promise<void> {
    const now = Date.now();
    for (const [id, f] of this.inflight) {
      if (f.until < now) {
        this.inflight.delete(id);
        continue;
      }
      this.metrics.reenqueued.inc();
      this.o.log.info({ approvalId: id }, 'redis is back: enqueueing the approval again');
      await this.enqueue(f.job).catch((err: Error) => this.o.log.warn({ approvalId: id, err: err.message }, 're-enqueue failed'));
    }
  }

  /**
   * Tells the api (signed) that the job is queued, so it records the pending approval now: approvers see
   * it even while the approvals app is down. Best effort: the queued job records it too.
   */
  private announce(job: ApprovalJob): void {
    const key = this.o.gatewayKey();
    if (!key) return;
    try {
      const msg = signApprovalMessage<ApprovalRequested>({ typ: 'approval-requested', job }, key);
      this.o.nc.publish(this.subjects.requested, JSON.stringify(msg));
    } catch (err) {
      this.o.log.warn({ approvalId: job.approvalId, err: err instanceof Error ? err.message : String(err) }, 'could not announce the approval');
    }
  }

  /** Tells the approvals app (signed) that this approval's statement will not run here. */
  private cancel(job: ApprovalJob, reason: ApprovalCancel['reason']): void {
    const key = this.o.gatewayKey();
    if (!key) return;
    try {
      const msg = signApprovalMessage<ApprovalCancel>({ typ: 'approval-cancel', job, reason, at: new Date().toISOString() }, key);
      this.o.nc.publish(this.subjects.cancel, JSON.stringify(msg));
    } catch (err) {
      this.o.log.warn({ approvalId: job.approvalId, err: err instanceof Error ? err.message : String(err) }, 'could not publish approval cancel');
    }
  }

  private synthetic(job: ApprovalJob, status: 'cancelled' | 'expired', comment: string): ApprovalDecision {
    return { typ: 'approval-decision', approvalId: job.approvalId, status, decidedBy: null, comment, decidedAt: new Date().toISOString() };
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(what)), ms); })]).finally(() => clearTimeout(t));
}
