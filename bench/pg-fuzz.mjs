#!/usr/bin/env node
// `node bench/pg-fuzz.mjs [--frames 1000000] [--workers 8] [--seed 7]` — the long protocol fuzzer:
// seeded valid-ish pipelines through the gateway and straight to Postgres (answers must match) and
// broken frames (a protocol error or the session going on), against the local Postgres and NATS.
// Runs apps/gateway/test/pg-fuzz-long.bench-run.ts in vitest; prints one `PG-FUZZ {...}` line with
// frames, mismatches, hangs, internal errors and memory before/after. Exit 1 on any finding.
import { fileURLToPath } from 'node:url';
import { startVitest } from 'vitest/node';

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
process.env.FUZZ_FRAMES = opt('frames', '1000000');
process.env.FUZZ_WORKERS = opt('workers', '8');
process.env.FUZZ_SEED = opt('seed', '7');
const root = fileURLToPath(new URL('..', import.meta.url));
const vitest = await startVitest('test', [], {
  root,
  config: `${root}vitest.config.ts`,
  include: ['apps/gateway/test/pg-fuzz-long.bench-run.ts'],
  reporters: ['default'],
  watch: false,
  testTimeout: 3 * 60 * 60 * 1000,
});
const failed = vitest?.state.getCountOfFailedTests() ?? 1;
await vitest?.close();
process.exit(failed > 0 ? 1 : 0);
