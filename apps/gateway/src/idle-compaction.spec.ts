import { describe, expect, it } from 'vitest';
import { trimNativeHeap } from './postgres/fast-lane.js';
import { fullGc, startIdleCompaction, type CompactionResult } from './idle-compaction.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Old-space garbage: objects that survive long enough to be promoted, then dropped. */
async function burst(mib: number): Promise<void> {
  let keep: unknown[] = [];
  for (let i = 0; i < mib * 1024; i++) keep.push({ i, s: `row-${i}-`.repeat(20), b: Buffer.alloc(512, i) });
  await sleep(20); // scavenges promote what is still referenced
  keep = [];
  void keep;
}

describe('idle compaction', () => {
  it('finds a full collection without --expose-gc', () => {
    expect(typeof fullGc()).toBe('function');
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
  });

  it('collects once after work, when the first quiet interval comes, and gives the memory back', async () => {
    let activity = 0;
    const runs: CompactionResult[] = [];
    const stop = startIdleCompaction({ activity: () => activity, trimNativeHeap, intervalMs: 100, minGrowthBytes: 1 << 20, onCompact: (r) => runs.push(r) });
    try {
      fullGc()?.();
      const baseline = process.memoryUsage().heapUsed;
      await burst(64);
      activity++;
      for (let i = 0; i < 30 && runs.length === 0; i++) await sleep(50);
      expect(runs).toHaveLength(1);
      const r = runs[0]!;
      expect(r.gcMs).toBeGreaterThan(0);
      // the heap is back near where it was before the burst (tens of MiB of garbage). V8 may have
      // collected part of it on its own first (a loaded host gives its concurrent marker time), so
      // what the compaction itself freed is not asserted, only that nothing of the burst is left.
      expect(r.heapUsedAfterBytes).toBeLessThanOrEqual(r.heapUsedBeforeBytes);
      expect(r.heapUsedAfterBytes).toBeLessThan(baseline + (8 << 20));
      // quiet afterwards: nothing more
      await sleep(400);
      expect(runs).toHaveLength(1);
    } finally {
      stop();
    }
  });

  it('never runs while the gateway stays busy, nor when work left too little behind', async () => {
    let activity = 0;
    const runs: CompactionResult[] = [];
    const busy = setInterval(() => activity++, 10);
    const stop = startIdleCompaction({ activity: () => activity, intervalMs: 60, minGrowthBytes: 1 << 20, onCompact: (r) => runs.push(r) });
    try {
      await burst(16);
      await sleep(400);
      expect(runs).toHaveLength(0);
    } finally {
      clearInterval(busy);
      stop();
    }
    // a trickle: activity, then quiet, but RSS has not grown by the threshold
    let trickle = 0;
    const stop2 = startIdleCompaction({ activity: () => trickle, intervalMs: 60, minGrowthBytes: 1 << 30, onCompact: (r) => runs.push(r) });
    try {
      trickle++;
      await sleep(300);
      expect(runs).toHaveLength(0);
    } finally {
      stop2();
    }
  });
});
