#!/usr/bin/env node
// `pnpm bench:k8s` (node bench/k8s-bench.mjs [--objects 1000] [--runs 15] [--seconds 5] [--concurrency 16]
// [--only small-gets] [--scenarios namespace,pod,secretMasked] [--profile gateway.cpuprofile]
// [--bare-workers N: the bare proxy as N processes sharing its port]) — Kubernetes
// through the gateway vs direct against a real kube-apiserver v1.32 (../shared/tools/kubernetes):
// `kubectl get pods -A` with 1,000 pods (p50 ratio, target ≤ 1.2×), small GETs per second (target
// ≥ 0.8× direct), and a 1,000-Secret list masked by the gateway with the share of time spent masking.
// Runs in-process through vitest (TypeScript compiled on the fly). Result: one `K8S-BENCH {...}` line
// on stdout and bench/results/k8s-<time>.json. Skips (exit 0, one line) without the binaries.
import { fileURLToPath } from 'node:url';
import { startVitest } from 'vitest/node';

const args = process.argv.slice(2);
const opt = (name, env) => {
  const i = args.indexOf(`--${name}`);
  if (i >= 0) process.env[env] = args[i + 1];
};
opt('objects', 'K8S_BENCH_OBJECTS');
opt('runs', 'K8S_BENCH_RUNS');
opt('seconds', 'K8S_BENCH_SECONDS');
opt('concurrency', 'K8S_BENCH_CONCURRENCY');
opt('only', 'K8S_BENCH_ONLY');
opt('profile', 'K8S_BENCH_PROFILE');
opt('scenarios', 'K8S_BENCH_SCENARIOS');
opt('bare-workers', 'K8S_BENCH_BARE_WORKERS');
// the list+watch load (apps/gateway/test/k8s-watch.bench-run.ts): `--only watch` alone, also in the default
// run; [--watchers 8] [--writes 500] [--write-rate 50] [--watch-rounds 2]; it prints its own
// `K8S-BENCH {"listWatch":…}` line and bench/results/k8s-watch-<time>.json
opt('watchers', 'K8S_BENCH_WATCHERS');
opt('writes', 'K8S_BENCH_WRITES');
opt('write-rate', 'K8S_BENCH_WRITE_RATE');
opt('watch-rounds', 'K8S_BENCH_WATCH_ROUNDS');
const only = process.env.K8S_BENCH_ONLY;
const files = [
  ...(only === 'watch' ? [] : ['apps/gateway/test/k8s-latency.bench-run.ts']),
  ...(only && only !== 'watch' ? [] : ['apps/gateway/test/k8s-watch.bench-run.ts']),
];
const root = fileURLToPath(new URL('..', import.meta.url));
const vitest = await startVitest('test', [], {
  root,
  config: `${root}vitest.config.ts`,
  include: files,
  fileParallelism: false, // one after the other: each has its own cluster and measures on a shared machine
  reporters: ['default'],
  watch: false,
});
const failed = vitest?.state.getCountOfFailedTests() ?? 1;
await vitest?.close();
process.exit(failed > 0 ? 1 : 0);
