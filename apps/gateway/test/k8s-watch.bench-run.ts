/**
 * An informer-like list+watch load through the gateway vs direct, run by bench/k8s-bench.mjs (`--only
 * watch`, and in the default run; not part of `pnpm test`: its name does not end in .test.ts). A real
 * kube-apiserver v1.32: W watchers on each side LIST a namespace's ConfigMaps then WATCH from the list's
 * resourceVersion, all sides at once — direct, through the gateway, and through a bare Node HTTPS proxy
 * (bench/lib/bare-https-proxy.mjs in its own process: TLS in, keep-alive agent out, watches streamed; no
 * authentication, policy, masking or events), the floor any Node proxy hop sets on this host; one writer (direct) creates and updates N ConfigMaps at a steady
 * rate, each stamped with its sequence number. Per event: write acknowledged → event received by each
 * watcher (p50/p99 each side, and the p50 ratio, target ≤ 1.2×; the event can beat the write's answer to
 * the client, so the minimum may be negative), the same from the write's sending, the LIST latency, and the events
 * received, which must equal those expected (a lost event fails the run). The watchers and the writer
 * run in their own process (bench/lib/watch-load.mjs), the gateway in this one. After the load, the
 * gateway's masker (the bench policy's, as the gateway builds it) is timed alone on the last LIST's body,
 * to show what share of the gateway's LIST it is. Only prints: no timing is asserted.
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createKubeMasking, parsePolicyDocument, parseRequestInfo } from '@portcullis/policy';
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
const BARE_PROXY = fileURLToPath(new URL('../../../bench/lib/bare-https-proxy.mjs', import.meta.url));

interface SideResult {
  listP50Ms: number | null;
  listP99Ms: number | null;
  listP50ByRoundMs: (number | null)[];
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
let bare: { base: string; stop(): void };

beforeAll(async () => {
  if (skip) return;
  cluster = await startKubeCluster();
  const tls = await poolTls();
  caPem = tls.caPem;
  bare = await startBareProxy(tls);
  h = await startHarness({ tls, connections: [kubeConnection(cluster, { name: 'kube', policy: POLICY.name })], policies: [{ name: POLICY.name, version: 1, document: POLICY }] });
  token = await h.credential({ cn: 'kube', sub: 'bench', expiresIn: '2h' });
}, 120_000);

afterAll(async () => {
  bare?.stop();
  await h?.stop();
  await cluster?.stop();
});

/** The bare Node proxy (bench/lib/bare-https-proxy.mjs) in its own process, to the same API server with its admin token. */
async function startBareProxy(tls: { certPem: string; keyPem: string }): Promise<{ base: string; stop(): void }> {
  const child: ChildProcess = fork(BARE_PROXY, [JSON.stringify({ upstream: cluster.server, upstreamCa: cluster.caPem, authorization: `Bearer ${cluster.adminToken}`, cert: tls.certPem, key: tls.keyPem })], { stdio: 'ignore' });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (c) => reject(new Error(`bare proxy exited (${c})`)));
  });
  return { base: `https://127.0.0.1:${port}/k8s/kube`, stop: () => child.disconnect() };
}

async function get(base: string, auth: string, ca: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const u = new URL(base + path);
    const req = request({ hostname: u.hostname, port: u.port, path: u.pathname, ca, headers: { authorization: auth, accept: 'application/json' } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve(Buffer.concat(parts).toString()));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * The gateway's masker alone on a LIST body: the masking the bench policy builds (Secrets redacted, no
 * detectors), run as the gateway runs it on a held JSON response; the median of `times` runs in ms, and
 * whether it parsed the JSON at all (without detectors a ConfigMap list is only searched for masked kinds).
 */
function timeMasker(body: string, path: string, times = 50): { ms: number; parsed: boolean; detectors: boolean } {
  const masking = createKubeMasking(parsePolicyDocument(POLICY), { hmacKey: Buffer.alloc(32, 7) });
  const info = parseRequestInfo('GET', path);
  const buf = Buffer.from(body);
  if (!masking || masking.modeFor(info) === 'none') return { ms: 0, parsed: false, detectors: false };
  const xs: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    masking.maskJsonText(buf, info);
    xs.push(performance.now() - t0);
  }
  xs.sort((a, b) => a - b);
  return { ms: +xs[Math.floor(times / 2)]!.toFixed(3), parsed: masking.mustParse(buf, info), detectors: masking.detectors };
}

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

function runWatchLoad(arg: unknown): Promise<{ direct: SideResult; gateway: SideResult; bare: SideResult; problems: string[] }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [WATCH_LOAD, JSON.stringify(arg)], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`watch load: ${err.message} ${stderr}`));
      resolve(JSON.parse(stdout) as { direct: SideResult; gateway: SideResult; bare: SideResult; problems: string[] });
    });
  });
}

it.skipIf(!!skip)(`list+watch: ${WATCHERS} watchers each side, ${WRITES} writes at ${RATE}/s, ${ROUNDS} rounds`, { timeout: 900_000 }, async () => {
  const direct = { base: cluster.server, authorization: `Bearer ${cluster.adminToken}`, ca: cluster.caPem };
  const gateway = { base: `https://127.0.0.1:${h.gateway.kubePort}/k8s/kube`, authorization: `Bearer ${token}`, ca: caPem };
  const bareSide = { base: bare.base, authorization: 'Bearer unused', ca: caPem };
  expect(await post(direct.base, direct.authorization, direct.ca, '/api/v1/namespaces', { metadata: { name: NAMESPACE } })).toBe(201);
  // no controller manager here: the ServiceAccount admission plugin wants the namespace's default account
  expect(await post(direct.base, direct.authorization, direct.ca, `/api/v1/namespaces/${NAMESPACE}/serviceaccounts`, { metadata: { name: 'default' } })).toBe(201);

  const loadAvgBefore = +loadavg()[0]!.toFixed(1);
  const r = await runWatchLoad({ sides: { direct, gateway, bare: bareSide }, writer: 'direct', namespace: NAMESPACE, watchers: WATCHERS, writes: WRITES, rate: RATE, rounds: ROUNDS });
  const loadAvgAfter = +loadavg()[0]!.toFixed(1);
  // the last round's LIST body (every ConfigMap the rounds made), through the masker as the gateway runs it
  const cmPath = `/api/v1/namespaces/${NAMESPACE}/configmaps`;
  const listBody = await get(direct.base, direct.authorization, direct.ca, cmPath);
  const masker = { listBytes: Buffer.byteLength(listBody), ...timeMasker(listBody, cmPath) };
  const ratio = (g: number | null, d: number | null): number | null => (g !== null && d !== null && d > 0 ? +(g / d).toFixed(3) : null);
  const listWatch = {
    watchers: WATCHERS, writes: WRITES, writesPerSecond: RATE, rounds: ROUNDS, loadAvgBefore, loadAvgAfter,
    direct: r.direct, gateway: r.gateway, bare: r.bare,
    eventP50Ratio: ratio(r.gateway.eventP50Ms, r.direct.eventP50Ms), eventP99Ratio: ratio(r.gateway.eventP99Ms, r.direct.eventP99Ms),
    writeToEventP50Ratio: ratio(r.gateway.writeToEventP50Ms, r.direct.writeToEventP50Ms),
    listP50Ratio: ratio(r.gateway.listP50Ms, r.direct.listP50Ms), target: 'eventP50Ratio <= 1.2',
    bareEventP50Ratio: ratio(r.bare.eventP50Ms, r.direct.eventP50Ms), bareEventP99Ratio: ratio(r.bare.eventP99Ms, r.direct.eventP99Ms),
    bareWriteToEventP50Ratio: ratio(r.bare.writeToEventP50Ms, r.direct.writeToEventP50Ms), bareListP50Ratio: ratio(r.bare.listP50Ms, r.direct.listP50Ms),
    lastRoundListP50Ratio: ratio(r.gateway.listP50ByRoundMs.at(-1) ?? null, r.direct.listP50ByRoundMs.at(-1) ?? null),
    bareLastRoundListP50Ratio: ratio(r.bare.listP50ByRoundMs.at(-1) ?? null, r.direct.listP50ByRoundMs.at(-1) ?? null),
    gatewayVsBareEventP50Ratio: ratio(r.gateway.eventP50Ms, r.bare.eventP50Ms), gatewayVsBareListP50Ratio: ratio(r.gateway.listP50Ms, r.bare.listP50Ms),
    masker,
    problems: r.problems,
  };
  const side = (n: string, x: SideResult): string =>
    `  ${n.padEnd(8)} event p50 ${x.eventP50Ms} ms p99 ${x.eventP99Ms} ms (max ${x.eventMaxMs}) | write sent → event p50 ${x.writeToEventP50Ms} ms p99 ${x.writeToEventP99Ms} ms | LIST p50 ${x.listP50Ms} ms p99 ${x.listP99Ms} ms (p50 by round ${x.listP50ByRoundMs.join(', ')} ms) | events ${x.eventsReceived}/${x.eventsExpected}${x.duplicates ? ` (${x.duplicates} duplicates)` : ''}`;
  process.stdout.write(
    `\nlist+watch, ${WATCHERS} watchers each side, ${ROUNDS}×${WRITES} writes at ${RATE}/s, load average ${loadAvgBefore} → ${loadAvgAfter}:\n` +
      `${side('direct', r.direct)}\n${side('gateway', r.gateway)}\n${side('bare', r.bare)}\n` +
      `  gateway  vs direct: event p50 ×${listWatch.eventP50Ratio} (target ≤ 1.2), p99 ×${listWatch.eventP99Ratio}, write sent → event p50 ×${listWatch.writeToEventP50Ratio}, LIST p50 ×${listWatch.listP50Ratio} (last round ×${listWatch.lastRoundListP50Ratio})\n` +
      `  bare     vs direct: event p50 ×${listWatch.bareEventP50Ratio}, p99 ×${listWatch.bareEventP99Ratio}, write sent → event p50 ×${listWatch.bareWriteToEventP50Ratio}, LIST p50 ×${listWatch.bareListP50Ratio} (last round ×${listWatch.bareLastRoundListP50Ratio}) (the floor of a Node proxy hop)\n` +
      `  gateway  vs bare: event p50 ×${listWatch.gatewayVsBareEventP50Ratio}, LIST p50 ×${listWatch.gatewayVsBareListP50Ratio}\n` +
      `  masker   alone on the last LIST (${masker.listBytes} bytes): ${masker.ms} ms a run (median of 50; ${masker.parsed ? 'JSON parsed' : 'not parsed: no masked kind in it'}; detectors ${masker.detectors ? 'on' : 'off'} in the bench policy)\n` +
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
  expect(r.bare.eventsReceived).toBe(r.bare.eventsExpected);
});
