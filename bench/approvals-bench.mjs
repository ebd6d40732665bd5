#!/usr/bin/env node
// `node bench/approvals-bench.mjs [--rounds 200]` — decision-to-resume latency of held statements:
// p50/p90/p99 from an approver's POST /v1/approvals/{id}/approve to the held pg session having its result.
// Runs the real api, approvals app and gateway in-process (through vitest, which compiles the TypeScript
// with decorator metadata), against the local Postgres, Redis and NATS. Target: p99 ≤ 100 ms.
// Result: one `APPROVALS-BENCH {...}` line on stdout and bench/results/approvals-<time>.json.
import { fileURLToPath } from 'node:url';
import { startVitest } from 'vitest/node';

const args = process.argv.slice(2);
const rounds = args.includes('--rounds') ? args[args.indexOf('--rounds') + 1] : '200';
process.env.APPROVALS_BENCH_ROUNDS = rounds;
const root = fileURLToPath(new URL('..', import.meta.url));
const vitest = await startVitest('test', [], {
  root,
  config: `${root}vitest.config.ts`,
  include: ['apps/gateway/test/approvals-latency.bench-run.ts'],
  reporters: ['default'],
  watch: false,
});
const failed = vitest?.state.getCountOfFailedTests() ?? 1;
await vitest?.close();
process.exit(failed > 0 ? 1 : 0);
