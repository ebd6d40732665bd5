/**
 * Decision-to-resume latency, run by bench/approvals-bench.mjs (not part of `pnpm test`: its name does not
 * end in .test.ts). For each round a pg session holds a statement; the clock starts when the approver's
 * POST /v1/approvals/{id}/approve is sent and stops when the client has the statement's result.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApprovalsStack, type ApprovalsStack } from './support/approvals-stack.js';

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
  const sub = `bench-${Date.now()}`;
  const c = await s.pgClient(await s.credential({ sub }));
  const total: number[] = [];
  const afterApi: number[] = [];
  try {
    for (let i = 0; i < ROUNDS + 10; i++) {
      const held = c.query('INSERT INTO log (v) VALUES ($1) /*hold*/ RETURNING v', [i]);
      const [pending] = await s.waitPending(sub);
      const t0 = performance.now();
      let tApi = 0;
      const decided = s.decide(pending.id, 'approve').then((r) => {
        tApi = performance.now();
        return r;
      });
      const r = await held;
      const t1 = performance.now();
      expect((await decided).status).toBe(200);
      expect(r.rows).toEqual([{ v: i }]);
      if (i >= 10) {
        total.push(t1 - t0);
        afterApi.push(Math.max(0, t1 - tApi));
      }
    }
  } finally {
    await c.end();
  }
  const sorted = [...total].sort((a, b) => a - b);
  const result = {
    bench: 'approvals decision-to-resume',
    rounds: ROUNDS,
    p50Ms: +pct(sorted, 50).toFixed(2),
    p90Ms: +pct(sorted, 90).toFixed(2),
    p99Ms: +pct(sorted, 99).toFixed(2),
    maxMs: +sorted[sorted.length - 1].toFixed(2),
    meanMs: +(total.reduce((a, b) => a + b, 0) / total.length).toFixed(2),
    note: 'from sending POST /v1/approvals/{id}/approve to the held client receiving its result (REST + Postgres update + signed NATS decision + upstream execution)',
    at: new Date().toISOString(),
  };
  process.stdout.write(`\nAPPROVALS-BENCH ${JSON.stringify(result)}\n`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/approvals-${result.at.replace(/[:.]/g, '-')}.json`, `${JSON.stringify(result, null, 2)}\n`);
  expect(result.p99Ms).toBeLessThan(Number(process.env.APPROVALS_BENCH_P99_TARGET_MS ?? 100));
});
