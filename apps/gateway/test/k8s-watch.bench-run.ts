/**
 * An informer-like list+watch load through the gateway vs direct, run by bench/k8s-bench.mjs (`--only
 * watch`, and in the default run; not part of `pnpm test`: its name does not end in .test.ts). A real
 * kube-apiserver v1.32: W watchers on each side LIST a namespace's ConfigMaps then WATCH from the list's
 * resourceVersion, both sides at once; one writer (direct) creates and updates N ConfigMaps at a steady
 * rate, each stamped with its sequence number. Per event: write acknowledged → event received by each
 * watcher (p50/p99 each side, and the p50 ratio, target ≤ 1.2×; the event can beat the write's answer to
 * the client, so the minimum may be negative), the same from the write's sending, the LIST latency, and the events
 * received, which must equal those expected (a lost event fails the run). The watchers and the writer
 * run in their own process (bench/lib/watch-load.mjs), the gateway in this one. Only prints: no timing
 * is asserted.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { kubeSkipReason, startKubeCluster, type KubeCluster } from '../../../test/support/kube-cluster.js';
import { startHarness, type Harness } from './support/harness.js';
import { kubeConnection, poolTls } from './support/kube-gateway.js';

const skip = kubeSkipReason();
const WATCHERS = Number(process.env.K8S_BENCH_WATCHERS ?? 8);
const WRITES = Number(process.env.K8S_BENCH_WRITES ?? 500);
const RATE = Number(process.env.K8S_BENCH_WRITE_RATE ?? 50);
const ROUNDS = Number(process.env.K8S_BENCH_WATCH_ROUNDS ?? 2);
const NAMESPACE = 'bench-watch';
const POLICY = { name: 'bench', guardrails: [{ name: 'no-ns-delete', action: 'block', match: { kubernetes: { verbs: ['delete'], resources: ['namespaces'] } } }] };
const WATCH_LOAD = fileURLToPath(new URL('../../../bench/lib/watch-load.mjs', import.meta.url));

interface SideResult {
  listP50Ms: number | null;
  listP99Ms: number | null;
  lists: number;
  eventP50Ms: number | null;
  eventP99Ms: number | null;
  eventMaxMs: number | null;
  eventMinMs: number | null;
  writeToEventP50Ms: number | null;
  writeToEventP99Ms: number | null;
  eventsExpected: number;
  eventsReceived: number;
  duplicates: number;
}

let cluster: KubeCluster;
let h: Harness;
let caPem: string;
let token: string;

beforeAll(async () => {
  if (skip) return;
  cluster = await startKubeCluster();
  const tls = await poolTls();
  caPem = tls.caPem;
  h = await startHarness({ tls, connections: [kubeConnection(cluster, { name: 'kube', policy: POLICY.name })], policies: [{ name: POLICY.name, version: 1, document: POLICY }] });
  token = await h.credential({ cn: 'kube', sub: 'bench', expiresIn: '2h' });
}, 120_000);

afterAll(async () => {
  await h?.stop();
  await cluster?.stop();
});

async function post(base: string, auth: string, ca: string, path: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL(base + path);
    const req = request({ hostname: u.hostname, port: u.port, path: u.pathname, method: 'POST', ca, headers: { authorization: auth, 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

function runWatchLoad(arg: unknown): Promise<{ direct: SideResult; gateway: SideResult; problems: string[] }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [WATCH_LOAD, JSON.stringify(arg)], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`watch load: ${err.message} ${stderr}`));
      resolve(JSON.parse(stdout) as { direct: SideResult; gateway: SideResult; problems: string[] });
    });
  });
}

it.skipIf(!!skip)(`list+watch: ${WATCHERS} watchers each side, ${WRITES} writes at ${RATE}/s, ${ROUNDS} rounds`, { timeout: 900_000 }, async () => {
  const direct = { base: cluster.server, authorization: `Bearer ${cluster.adminToken}`, ca: cluster.caPem };
  const gateway = { base: `https://127.0.0.1:${h.gateway.kubePort}/k8s/kube`, authorization: `Bearer ${token}`, ca: caPem };
  expect(await post(direct.base, direct.authorization, direct.ca, '/api/v1/namespaces', { metadata: { name: NAMESPACE } })).toBe(201);
  // no controller manager here: the ServiceAccount admission plugin wants the namespace's default account
  expect(await post(direct.base, direct.authorization, direct.ca, `/api/v1/namespaces/${NAMESPACE}/serviceaccounts`, { metadata: { name: 'default' } })).toBe(201);

  const loadAvgBefore = +loadavg()[0]!.toFixed(1);
  const r = await runWatchLoad({ sides: { direct, gateway }, writer: 'direct', namespace: NAMESPACE, watchers: WATCHERS, writes: WRITES, rate: RATE, rounds: ROUNDS });
  const loadAvgAfter = +loadavg()[0]!.toFixed(1);
  const ratio = (g: number | null, d: number | null): number | null => (g !== null && d !== null && d > 0 ? +(g / d).toFixed(3) : null);
  const listWatch = {
    watchers: WATCHERS, writes: WRITES, writesPerSecond: RATE, rounds: ROUNDS, loadAvgBefore, loadAvgAfter,
    direct: r.direct, gateway: r.gateway,
    eventP50Ratio: ratio(r.gateway.eventP50Ms, r.direct.eventP50Ms), eventP99Ratio: ratio(r.gateway.eventP99Ms, r.direct.eventP99Ms),
    writeToEventP50Ratio: ratio(r.gateway.writeToEventP50Ms, r.direct.writeToEventP50Ms),
    listP50Ratio: ratio(r.gateway.listP50Ms, r.direct.listP50Ms), target: 'eventP50Ratio <= 1.2',
    problems: r.problems,
  };
  const side = (n: string, x: SideResult): string =>
    `  ${n.padEnd(8)} event p50 ${x.eventP50Ms} ms p99 ${x.eventP99Ms} ms (max ${x.eventMaxMs}) | write sent → event p50 ${x.writeToEventP50Ms} ms p99 ${x.writeToEventP99Ms} ms | LIST p50 ${x.listP50Ms} ms p99 ${x.listP99Ms} ms | events ${x.eventsReceived}/${x.eventsExpected}${x.duplicates ? ` (${x.duplicates} duplicates)` : ''}`;
  process.stdout.write(
    `\nlist+watch, ${WATCHERS} watchers each side, ${ROUNDS}×${WRITES} writes at ${RATE}/s, load average ${loadAvgBefore} → ${loadAvgAfter}:\n` +
      `${side('direct', r.direct)}\n${side('gateway', r.gateway)}\n` +
      `  ratio    event p50 ×${listWatch.eventP50Ratio} (target ≤ 1.2), p99 ×${listWatch.eventP99Ratio}, write sent → event p50 ×${listWatch.writeToEventP50Ratio}, LIST p50 ×${listWatch.listP50Ratio}\n` +
      (r.problems.length ? `  problems: ${r.problems.join('; ')}\n` : ''),
  );
  process.stdout.write(`\nK8S-BENCH ${JSON.stringify({ listWatch })}\n`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/k8s-watch-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, `${JSON.stringify({ listWatch }, null, 2)}\n`);
  // a lost event (or a watch that broke) is a failure of the gateway, not a slow run
  expect(r.problems).toEqual([]);
  expect(r.direct.eventsReceived).toBe(r.direct.eventsExpected);
  expect(r.gateway.eventsReceived).toBe(r.gateway.eventsExpected);
  expect(r.gateway.duplicates).toBe(0);
});
