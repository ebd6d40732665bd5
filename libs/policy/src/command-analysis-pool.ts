import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { CommandDecision } from './command-guardrails.js';
import type { PolicyDocument } from './policy-document.js';
import type { CommandRequest } from './policy-engine.js';

/**
 * Shell analysis off the event loop. The shell parser (mvdan-sh, GopherJS) and the analysis take tens
 * of microseconds a byte: a 16 KiB line of many words is hundreds of milliseconds of CPU, and on the
 * event loop that relays every session it would stall them all. Long texts are decided in one worker
 * thread instead; a text that takes longer than `timeoutMs` ends the worker (a new one starts) and is
 * refused as too complex; a queue longer than `maxQueued` refuses at once. One client can then slow
 * only other long texts, never the relay.
 */
export interface CommandAnalysisPoolOptions {
  timeoutMs?: number;
  maxQueued?: number;
}

interface Job {
  id: number;
  key: string;
  document: PolicyDocument;
  text: string;
  req: CommandRequest;
  resolve(d: CommandDecision): void;
}

/** The compiled worker beside this module (dist/), or — when this module runs from src/ (tests) — the built one. */
function workerUrl(): URL {
  const here = new URL('./command-analysis-worker.js', import.meta.url);
  if (existsSync(here)) return here;
  return new URL('../dist/command-analysis-worker.js', import.meta.url);
}

export class CommandAnalysisPool {
  private worker: Worker | null = null;
  /** the worker has loaded the library: a job's clock runs from then */
  private ready = false;
  private readonly known = new Set<string>();
  private readonly queue: Job[] = [];
  private current: Job | null = null;
  private timer: NodeJS.Timeout | null = null;
  private nextId = 1;
  private readonly timeoutMs: number;
  private readonly maxQueued: number;
  /** texts refused because they took too long or the queue was full */
  refused = 0;
  /** texts the worker decided */
  analysed = 0;

  constructor(opts: CommandAnalysisPoolOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 5_000;
    this.maxQueued = opts.maxQueued ?? 64;
  }

  /** The engine's decision on `text` under `document` (`key` names the document's version). Never rejects. */
  evaluate(key: string, document: PolicyDocument, text: string, req: CommandRequest = {}): Promise<CommandDecision> {
    if (this.queue.length >= this.maxQueued) {
      this.refused++;
      return Promise.resolve(refusal('the gateway is analysing too many long commands; try again shortly'));
    }
    return new Promise((resolve) => {
      this.queue.push({ id: this.nextId++, key, document, text, req, resolve });
      this.pump();
    });
  }

  /** Ends the worker (the gateway stops). */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    for (const j of this.queue.splice(0)) j.resolve(refusal('the gateway is stopping'));
    this.current?.resolve(refusal('the gateway is stopping'));
    this.current = null;
    if (this.timer) clearTimeout(this.timer);
    await w?.terminate();
  }

  private spawn(): Worker {
    const w = new Worker(workerUrl());
    w.unref();
    w.on('message', (m: { id: number; decision?: CommandDecision; ms?: number; error?: string; ready?: boolean }) => {
      if (m.ready !== undefined) {
        if (this.worker !== w) return;
        if (!m.ready) return this.finish(refusal(`the command could not be analysed (${m.error ?? 'the policy library did not load'})`));
        this.ready = true;
        if (this.current) this.startClock();
        return;
      }
      const job = this.current;
      if (!job || job.id !== m.id) return;
      // the timer runs on this thread: a busy event loop can take the worker's answer before it fires
      // (both are due together), so the worker's own measure decides too — slow is refused either way
      if (m.decision && m.ms !== undefined && m.ms > this.timeoutMs) return this.tooSlow();
      if (m.decision) this.analysed++;
      this.finish(m.decision ?? refusal(`the command could not be analysed (${m.error ?? 'no answer'})`));
    });
    const lost = (why: string): void => {
      if (this.worker !== w) return;
      this.worker = null;
      this.known.clear();
      this.finish(refusal(why));
    };
    w.on('error', (err) => lost(`the command analysis failed (${err.message})`));
    w.on('exit', () => lost('the command analysis stopped'));
    this.known.clear();
    this.ready = false;
    return w;
  }

  private pump(): void {
    if (this.current || !this.queue.length) return;
    const job = this.queue.shift()!;
    this.current = job;
    this.worker ??= this.spawn();
    if (!this.known.has(job.key)) {
      this.worker.postMessage({ kind: 'policy', key: job.key, document: job.document });
      this.known.add(job.key);
    }
    this.worker.postMessage({ kind: 'command', id: job.id, key: job.key, text: job.text, req: job.req });
    if (this.ready) this.startClock();
  }

  private startClock(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      const w = this.worker;
      this.worker = null;
      this.tooSlow();
      void w?.terminate();
    }, this.timeoutMs);
    this.timer.unref();
  }

  private tooSlow(): void {
    this.refused++;
    this.finish(refusal(`command too complex: analysing it took longer than ${this.timeoutMs} ms`));
  }

  private finish(d: CommandDecision): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const job = this.current;
    this.current = null;
    job?.resolve(d);
    this.pump();
  }
}

function refusal(reason: string): CommandDecision {
  return { action: 'block', rule: 'command-too-complex', reason, kinds: [], cached: false } as CommandDecision;
}
