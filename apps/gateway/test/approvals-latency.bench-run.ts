/**
 * Decision-to-resume latency, run by bench/approvals-bench.mjs (not part of `pnpm test`: its name does not
 * end in .test.ts). For each round a pg session holds a statement; the clock starts when the approver's
 * POST /v1/approvals/{id}/approve is sent and stops when the client has the statement's result.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApprovalsStack, type ApprovalsStack } from '../../../test/support/approvals-stack.js';

const ROUNDS = Number(process.env.APPROVALS_BENCH_ROUNDS ?? 200);
let s: ApprovalsStack;

beforeAll(async () => {
  s = await startApprovalsStack({ timeoutSeconds: 120 });
}, 90_000);

afterAll(async () => {
  await s?.stop();
});

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

it(`decision-to-resume latency over ${ROUNDS} approvals`, { timeout: 600_000 }, async () => {
  const who = `bench-${Date.now()}`;
  const c = await s.pgClient(await s.credential({ sub: who }));
  const total: number[] = [];
  const restToNats: number[] = [];
  const natsToResult: number[] = [];
  // When the signed decision is on NATS (what the holding gateway receives at the same moment).
  const seen = new Map<string, number>();
  const { natsNames } = await import('@portcullis/protocol');
  const sub = s.h.nc.subscribe(natsNames(s.h.natsPrefix).approvalDecisionsAll, {
    callback: (_e, m) => seen.set(m.subject.split('.').pop()!, performance.now()),
  });
  await s.h.nc.flush();
  try {
    for (let i = 0; i < ROUNDS + 10; i++) {
      const held = c.query('INSERT INTO log (v) VALUES ($1) /*hold*/ RETURNING v', [i]);
      const [pending] = await s.waitPending(who);
      const t0 = performance.now();
      const decided = s.decide(pending.id, 'approve');
      const r = await held;
      const t1 = performance.now();
      expect((await decided).status).toBe(200);
      expect(r.rows).toEqual([{ v: i }]);
      const tNats = seen.get(pending.id);
      if (i >= 10 && tNats !== undefined) {
        total.push(t1 - t0);
        restToNats.push(tNats - t0);
        natsToResult.push(t1 - tNats);
      }
    }
  } finally {
    sub.unsubscribe();
    await c.end();
  }
  const stats = (xs: number[]) => {
    const o = [...xs].sort((a, b) => a - b);
    return { p50Ms: +pct(o, 50).toFixed(2), p99Ms: +pct(o, 99).toFixed(2) };
  };
  const sorted = [...total].sort((a, b) => a - b);
  const result = {
    bench: 'approvals decision-to-resume',
    rounds: ROUNDS,
    p50Ms: +pct(sorted, 50).toFixed(2),
    p90Ms: +pct(sorted, 90).toFixed(2),
    p99Ms: +pct(sorted, 99).toFixed(2),
    maxMs: +sorted[sorted.length - 1].toFixed(2),
    meanMs: +(total.reduce((a, b) => a + b, 0) / total.length).toFixed(2),
    /** api side: REST, auth, conditional UPDATE, JWS signing, NATS publish */
    restToDecisionOnNats: stats(restToNats),
    /** gateway side: NATS delivery, signature check, statement upstream, result to the client */
    decisionOnNatsToResult: stats(natsToResult),
    loadAverage: (await import('node:os')).loadavg().map((x) => +x.toFixed(2)),
    note: 'from sending POST /v1/approvals/{id}/approve to the held client receiving its result (REST + Postgres update + signed NATS decision + upstream execution)',
    at: new Date().toISOString(),
  };
  process.stdout.write(`\nAPPROVALS-BENCH ${JSON.stringify(result)}\n`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/approvals-${result.at.replace(/[:.]/g, '-')}.json`, `${JSON.stringify(result, null, 2)}\n`);
  expect(result.p99Ms).toBeLessThan(Number(process.env.APPROVALS_BENCH_P99_TARGET_MS ?? 100));
});
