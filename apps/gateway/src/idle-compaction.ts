import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from './logger.js';

/**
 * Idle compaction: when the gateway goes quiet after work, one full garbage collection and a trim
 * of the C heap hand back the memory the work left behind.
 *
 * Why: V8 collects its old space only when it grows, so after a burst of traffic the heap keeps tens
 * of MiB of garbage (and the Buffers it still references keep their malloc'd pages) for as long as
 * nothing allocates — which is exactly when a gateway holds many idle sessions. Measured on a
 * gateway after 24 s of pgbench: 130 MiB RSS as left, 105 MiB after one collection.
 *
 * How: every `intervalMs` the activity counter (sessions opened + events published + bytes the live
 * sessions relayed) is read. After an interval with activity, the first interval without any runs
 * the collection once — if RSS has
 * grown by `minGrowthBytes` since the last one (a trickle of statements leaves little behind and is
 * never worth a pause). The pause, 40–110 ms measured with 0–1,000 sessions open, falls on a
 * gateway nobody is using; a gateway that stays busy or stays quiet is never touched.
 */
export interface IdleCompactionOptions {
  /** a number that changes with work (sessions accepted, events published, bytes relayed) */
  activity: () => number;
  /** the native heap trim (fast-lane.ts trimNativeHeap), if the module is built */
  trimNativeHeap?: () => boolean;
  intervalMs?: number;
  /** RSS growth since the last compaction (or start) below which a quiet interval does nothing; default 16 MiB */
  minGrowthBytes?: number;
  logger?: Logger;
  /** called after each compaction with what it did (tests, metrics) */
  onCompact?: (r: CompactionResult) => void;
}

export interface CompactionResult {
  rssBeforeBytes: number;
  rssAfterBytes: number;
  heapUsedBeforeBytes: number;
  heapUsedAfterBytes: number;
  /** the collection's pause */
  gcMs: number;
  /** the C heap trim's */
  trimMs: number;
  nativeTrimmed: boolean;
}

const mib = (bytes: number) => +(bytes / 2 ** 20).toFixed(1);

let cachedGc: (() => void) | null | undefined;

/**
 * V8's full collection: `gc` when the process runs with --expose-gc, else taken from a fresh
 * context after enabling the flag for it (the flag is switched off again at once; only that
 * context's global has it). null if neither works.
 */
export function fullGc(): (() => void) | null {
  if (cachedGc !== undefined) return cachedGc;
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') return (cachedGc = exposed as () => void);
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    cachedGc = typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    cachedGc = null;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  return cachedGc;
}

/** Starts the watch; returns its stop function. Does nothing (and says so) when no collection is available. */
export function startIdleCompaction(opts: IdleCompactionOptions): () => void {
  const gc = fullGc();
  if (!gc) {
    opts.logger?.warn('idle compaction unavailable: V8 gave no gc function; memory after bursts is returned more slowly');
    return () => {};
  }
  const minGrowth = opts.minGrowthBytes ?? 16 * 2 ** 20;
  let last = opts.activity();
  let worked = false;
  let baseline = process.memoryUsage.rss();
  const timer = setInterval(() => {
    const now = opts.activity();
    if (now !== last) {
      last = now;
      worked = true;
      return;
    }
    if (!worked) return;
    worked = false;
    const rssBeforeBytes = process.memoryUsage.rss();
    if (rssBeforeBytes - baseline < minGrowth) return;
    const heapUsedBeforeBytes = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    gc();
    const t1 = performance.now();
    const nativeTrimmed = opts.trimNativeHeap?.() ?? false;
    const trimMs = performance.now() - t1;
    const after = process.memoryUsage();
    const r: CompactionResult = { rssBeforeBytes, rssAfterBytes: after.rss, heapUsedBeforeBytes, heapUsedAfterBytes: after.heapUsed, gcMs: t1 - t0, trimMs, nativeTrimmed };
    baseline = r.rssAfterBytes;
    opts.logger?.debug(
      { rssBeforeMiB: mib(rssBeforeBytes), rssAfterMiB: mib(r.rssAfterBytes), heapUsedBeforeMiB: mib(heapUsedBeforeBytes), heapUsedAfterMiB: mib(after.heapUsed), gcMs: +r.gcMs.toFixed(1), trimMs: +r.trimMs.toFixed(1) },
      'idle compaction',
    );
    opts.onCompact?.(r);
  }, opts.intervalMs ?? 2000);
  timer.unref();
  return () => clearInterval(timer);
}
