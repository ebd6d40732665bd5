import { describe, expect, it } from 'vitest';
import { startHarness } from './support/harness.js';
import { FuzzHang, mutate, openRaw, pipeline, prng, type RawConn } from './support/pipeline-fuzz.js';

/**
 * The long protocol fuzzer (`node bench/pg-fuzz.mjs [--frames 1000000] [--workers 8] [--seed n]`):
 * WORKERS raw sessions at once send seeded valid-ish pipelines through the gateway and straight to
 * Postgres (answers must match), and every tenth round a pipeline with broken frames (answers: a
 * protocol error and a closed session, the session going on, or a stall: a broken length field that
 * claims bytes never sent, which the gateway waits for as Postgres does). Reports frames,
 * mismatches, hangs, internal errors (XX000) and the process's memory before and after. Not part of `pnpm test`.
 */

const FRAMES = Number(process.env.FUZZ_FRAMES ?? 1_000_000);
const WORKERS = Number(process.env.FUZZ_WORKERS ?? 8);
const SEED = Number(process.env.FUZZ_SEED ?? 7);

const policy = {
  name: 'fuzz',
  guardrails: [{ name: 'no-session-killing', action: 'block', match: { functions: ['pg_terminate_backend'] } }],
  dynamicSql: 'allow',
  masking: [{ name: 'never-read', columns: ['vault.secret'], strategy: 'redact' }],
};
const shape = (t: string[]) => t.map((l) => (l.startsWith('E ') ? 'E' : l));
const mb = (n: number) => Math.round(n / 1024 / 1024);

describe('long protocol fuzzer', () => {
  it(`${FRAMES} frames`, async () => {
    const h = await startHarness({ policies: [{ name: 'fuzz', version: 1, document: policy }], connection: { policy: 'fuzz' } });
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const before = process.memoryUsage();
    const t0 = Date.now();
    const stats = { frames: 0, pipelines: 0, broken: 0, mismatches: 0, hangs: 0, stalled: 0, internalErrors: 0, protocolErrors: 0, survivedBroken: 0, first: [] as unknown[] };
    const open = async (): Promise<[RawConn, RawConn]> => [
      await openRaw(h.gateway.pgPort, { user: 'carol', database: h.connectionName, password: await h.credential({ expiresIn: '2h' }) }),
      await openRaw(5432, { user: 'postgres', database: h.dbName }),
    ];
    const worker = async (w: number): Promise<void> => {
      const r = prng(SEED * 1000 + w);
      let [via, direct] = await open();
      for (let round = 0; stats.frames < FRAMES; round++) {
        const p = pipeline(r, 40);
        try {
          if (round % 10 === 9) {
            // broken frames: only the gateway is asked
            const broken = p.map((f) => (r() < 0.3 ? mutate(r, f) : f));
            stats.frames += broken.length + 2;
            stats.broken++;
            let t: string[];
            try {
              t = await via.raw(Buffer.concat(broken), 1000);
            } catch (err) {
              if (!(err instanceof FuzzHang)) throw err;
              // a broken length claims bytes that never come: the gateway waits for them, as Postgres
              // does (until its idle timeout); not a hang of the gateway (valid pipelines check that)
              stats.stalled++;
              via.close();
              direct.close();
              [via, direct] = await open();
              continue;
            }
            if (t.includes('closed')) stats.protocolErrors++;
            else stats.survivedBroken++;
            if (t.some((l) => l === 'E XX000')) stats.internalErrors++;
            // fresh sessions either way: one that went on may hold state (a transaction, prepared
            // statements) the direct session never got, and the next comparison would be unfair
            via.close();
            direct.close();
            [via, direct] = await open();
            continue;
          }
          stats.frames += p.length + 3;
          stats.pipelines++;
          const [a, b] = await Promise.all([via.run(p, 15_000), direct.run(p, 15_000)]);
          if (a.some((l) => l === 'E XX000')) stats.internalErrors++;
          if (JSON.stringify(shape(a)) !== JSON.stringify(shape(b))) {
            stats.mismatches++;
            if (stats.first.length < 3) stats.first.push({ worker: w, round, via: a, direct: b });
          }
        } catch (err) {
          if (!(err instanceof FuzzHang)) throw err;
          stats.hangs++;
          via.close();
          direct.close();
          [via, direct] = await open();
        }
      }
      via.close();
      direct.close();
    };
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    const seconds = (Date.now() - t0) / 1000;
    // a fresh session still works
    const last = await openRaw(h.gateway.pgPort, { user: 'carol', database: h.connectionName, password: await h.credential() });
    const t = await last.run([]);
    last.close();
    await new Promise((r) => setTimeout(r, 500));
    gc?.();
    const after = process.memoryUsage();
    const report = {
      ...stats,
      seconds: Math.round(seconds),
      framesPerSecond: Math.round(stats.frames / seconds),
      freshSelectWorks: t.some((l) => l.startsWith('D ')),
      rssMiB: { before: mb(before.rss), after: mb(after.rss) },
      heapUsedMiB: { before: mb(before.heapUsed), after: mb(after.heapUsed) },
      liveSessionsAfter: h.gateway.liveSessions,
    };
    process.stdout.write(`PG-FUZZ ${JSON.stringify(report)}\n`);
    await h.stop();
    expect(report.hangs).toBe(0);
    expect(report.internalErrors).toBe(0);
    expect(report.mismatches).toBe(0);
    expect(report.freshSelectWorks).toBe(true);
  }, 3 * 60 * 60 * 1000);
});
