/**
 * Kubernetes through the gateway vs direct, run by bench/k8s-bench.mjs (not part of `pnpm test`: its
 * name does not end in .test.ts). A real kube-apiserver v1.32 with 1,000 pods and 1,000 Secrets:
 *  - `kubectl get pods -A` (real kubectl, process start included) and the raw list request, p50 each way;
 *  - small GETs (one namespace object) per second with keep-alive clients, each way;
 *  - a 1,000-Secret list through the gateway (masked), and the share of its time spent masking.
 * Direct and gateway runs alternate so load on the shared machine hits both alike. Ratios are from one run.
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';
import { Agent, request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createKubeMasking, parsePolicyDocument, parseRequestInfo } from '@portcullis/policy';
import { kubeSkipReason, runKubectl, startKubeCluster, type KubeCluster } from '../../../test/support/kube-cluster.js';
import { startHarness, type Harness } from './support/harness.js';
import { GatewayKubectl, kubeConnection, poolTls } from './support/kube-gateway.js';

const skip = kubeSkipReason();
const OBJECTS = Number(process.env.K8S_BENCH_OBJECTS ?? 1000);
const RUNS = Number(process.env.K8S_BENCH_RUNS ?? 15);
const RPS_SECONDS = Number(process.env.K8S_BENCH_SECONDS ?? 5);
const POLICY = { name: 'bench', guardrails: [{ name: 'no-ns-delete', action: 'block', match: { kubernetes: { verbs: ['delete'], resources: ['namespaces'] } } }] };

let cluster: KubeCluster;
let h: Harness;
let k: GatewayKubectl;
let caPem: string;
let tlsMaterial: { certPem: string; keyPem: string; caPem: string };
let token: string;

beforeAll(async () => {
  if (skip) return;
  cluster = await startKubeCluster();
  const tls = await poolTls();
  caPem = tls.caPem;
  tlsMaterial = tls;
  h = await startHarness({ tls, connections: [kubeConnection(cluster, { name: 'kube', policy: POLICY.name })], policies: [{ name: POLICY.name, version: 1, document: POLICY }] });
  k = new GatewayKubectl(cluster, tls.caPem);
  token = await h.credential({ cn: 'kube', sub: 'bench', expiresIn: '2h' });
}, 120_000);

afterAll(async () => {
  await h?.stop();
  await cluster?.stop();
  k?.cleanup();
});

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

function call(agent: Agent, base: string, path: string, auth: string, ca: string, method = 'GET', body?: string): Promise<{ status: number; bytes: number; text?: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(base + path);
    const req = httpsRequest({ hostname: u.hostname, port: u.port, path: u.pathname + u.search, method, agent, ca, headers: { authorization: auth, accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const b = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, bytes: b.length, text: method !== 'GET' || path.includes('secrets') ? b.toString() : undefined });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface Side { base: string; auth: string; ca: string }
interface Load { requests: number; rps: number; p50Ms: number | null; p99Ms: number | null; errors: number; firstError?: string; cpuMs: number }
const LOAD_SCRIPT = fileURLToPath(new URL('../../../bench/lib/http-load.mjs', import.meta.url));
const BARE_PROXY = fileURLToPath(new URL('../../../bench/lib/bare-https-proxy.mjs', import.meta.url));
const CONCURRENCY = Number(process.env.K8S_BENCH_CONCURRENCY ?? 16);

/** One run of the load generator (its own process) against `path` on one side. */
function load(side: Side, path: string, seconds: number): Promise<Load> {
  const arg = JSON.stringify({ url: side.base + path, authorization: side.auth, ca: side.ca, seconds, concurrency: CONCURRENCY });
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [LOAD_SCRIPT, arg], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`load generator: ${err.message} ${stderr}`));
      const r = JSON.parse(stdout) as Load;
      if (r.errors > 0) return reject(new Error(`load generator: ${r.errors} errors against ${side.base}${path} (first: ${r.firstError})`));
      resolve(r);
    });
  });
}

/**
 * The same bare proxy in this process (the gateway's): the floor with the gateway's runtime around it
 * (vitest's transformed modules, the gateway's other modules, its heap). Its CPU is this process's,
 * measured like the gateway's.
 */
async function startInProcessBareProxy(tls: { certPem: string; keyPem: string }): Promise<{ side: Side; close(): void }> {
  const { startBareProxy: start } = (await import(BARE_PROXY)) as { startBareProxy(o: Record<string, string>): Promise<{ port: number; close(): void }> };
  const p = await start({ upstream: cluster.server, upstreamCa: cluster.caPem, authorization: `Bearer ${cluster.adminToken}`, cert: tls.certPem, key: tls.keyPem });
  return { side: { base: `https://127.0.0.1:${p.port}/k8s/kube`, auth: 'Bearer unused', ca: caPem }, close: p.close };
}

/** The bare Node proxy (bench/lib/bare-https-proxy.mjs) in its own process: the floor of the gateway's design. */
async function startBareProxy(tls: { certPem: string; keyPem: string; caPem: string }): Promise<{ side: Side; cpuMs(): Promise<number>; stop(): void }> {
  // with K8S_BENCH_PROFILE=<file>, the bare proxy's own CPU profile goes to <file>.bare/ (written when it exits)
  const profile = process.env.K8S_BENCH_PROFILE;
  const execArgv = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}.bare`] : [];
  const child: ChildProcess = fork(BARE_PROXY, [JSON.stringify({ upstream: cluster.server, upstreamCa: cluster.caPem, authorization: `Bearer ${cluster.adminToken}`, cert: tls.certPem, key: tls.keyPem })], { stdio: 'ignore', execArgv, env: { ...process.env, BARE_WORKERS: process.env.K8S_BENCH_BARE_WORKERS ?? '1' } });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (c) => reject(new Error(`bare proxy exited (${c})`)));
  });
  return {
    side: { base: `https://127.0.0.1:${port}/k8s/kube`, auth: 'Bearer unused', ca: tls.caPem },
    cpuMs: () => new Promise((resolve) => {
      child.once('message', (m) => resolve((m as { cpuMs: number }).cpuMs));
      child.send('cpu');
    }),
    // disconnect: the proxy exits on its own (and writes its profile)
    stop: () => child.disconnect(),
  };
}

/**
 * Small GETs per second, each scenario direct, through a bare Node proxy (the floor: TLS in, keep-alive
 * TLS out, nothing else) and through the gateway, alternately (best of two runs each, after a warm-up);
 * the CPU per request of the gateway and of the bare proxy. K8S_BENCH_PROFILE=<file> writes a CPU
 * profile of the gateway during its namespace runs (Chrome DevTools or speedscope open it).
 */
async function smallGetRuns(direct: Side, gw: Side, tls: { certPem: string; keyPem: string; caPem: string }): Promise<Record<string, unknown>> {
  const all: Record<string, string> = {
    namespace: '/api/v1/namespaces/default',
    pod: '/api/v1/namespaces/bench-a/pods/web-0',
    secretMasked: '/api/v1/namespaces/bench-secrets/secrets/s-1',
  };
  // K8S_BENCH_SCENARIOS=namespace,pod: only those
  const only = process.env.K8S_BENCH_SCENARIOS?.split(',').filter(Boolean);
  const scenarios = only ? Object.fromEntries(Object.entries(all).filter(([name]) => only.includes(name))) : all;
  const bare = await startBareProxy(tls);
  const inProcess = await startInProcessBareProxy(tls);
  const profile = process.env.K8S_BENCH_PROFILE;
  const inspector = profile ? new Session() : null;
  if (inspector) {
    inspector.connect();
    await inspector.post('Profiler.enable');
  }
  const out: Record<string, unknown> = { concurrency: CONCURRENCY, seconds: RPS_SECONDS, loadAvgBefore: +loadavg()[0]!.toFixed(1) };
  const best = (xs: Load[]): Load => xs.reduce((a, b) => (b.rps > a.rps ? b : a));
  const perRequest = (ms: number, xs: Load[]): number => Math.round((ms * 1000) / xs.reduce((n, r) => n + r.requests, 0));
  for (const [name, path] of Object.entries(scenarios)) {
    const bareSide = name === 'secretMasked' ? null : bare.side; // the bare proxy masks nothing
    await load(direct, path, 1);
    await load(gw, path, 1);
    if (bareSide) await load(bareSide, path, 1);
    const d: Load[] = [];
    const g: Load[] = [];
    const b: Load[] = [];
    const ib: Load[] = [];
    let gwCpuMs = 0;
    let bareCpuMs = 0;
    let inProcessCpuMs = 0;
    for (let i = 0; i < 2; i++) {
      d.push(await load(direct, path, RPS_SECONDS));
      if (bareSide) {
        const c0 = await bare.cpuMs();
        b.push(await load(bareSide, path, RPS_SECONDS));
        bareCpuMs += (await bare.cpuMs()) - c0;
        const ic0 = process.cpuUsage();
        ib.push(await load(inProcess.side, path, RPS_SECONDS));
        const ic = process.cpuUsage(ic0);
        inProcessCpuMs += (ic.user + ic.system) / 1000;
      }
      if (inspector && name === 'namespace' && i === 1) await inspector.post('Profiler.start');
      const cpu0 = process.cpuUsage();
      g.push(await load(gw, path, RPS_SECONDS));
      const cpu = process.cpuUsage(cpu0);
      gwCpuMs += (cpu.user + cpu.system) / 1000;
      if (inspector && name === 'namespace' && i === 1) {
        const { profile: p } = await inspector.post('Profiler.stop');
        writeFileSync(profile!, JSON.stringify(p));
      }
    }
    const bd = best(d);
    const bg = best(g);
    const bb = b.length ? best(b) : null;
    out[name] = {
      path, directRps: bd.rps, gatewayRps: bg.rps, ratio: +(bg.rps / bd.rps).toFixed(3),
      directP50Ms: bd.p50Ms, gatewayP50Ms: bg.p50Ms, p50Ratio: bd.p50Ms && bg.p50Ms ? +(bg.p50Ms / bd.p50Ms).toFixed(3) : null,
      ...(bb ? { bareProxyRps: bb.rps, bareProxyRatio: +(bb.rps / bd.rps).toFixed(3), bareProxyP50Ms: bb.p50Ms } : {}),
      gatewayRequests: g.reduce((n, r) => n + r.requests, 0), gatewayCpuUsPerRequest: perRequest(gwCpuMs, g),
      ...(bb ? { bareProxyRequests: b.reduce((n, r) => n + r.requests, 0), bareProxyCpuUsPerRequest: perRequest(bareCpuMs, b) } : {}),
      ...(ib.length ? { bareInGatewayProcessRatio: +(best(ib).rps / bd.rps).toFixed(3), bareInGatewayProcessCpuUsPerRequest: perRequest(inProcessCpuMs, ib) } : {}),
      ...(name === 'namespace' ? { target: '>= 0.8' } : {}),
    };
  }
  inspector?.disconnect();
  bare.stop();
  inProcess.close();
  out.loadAvgAfter = +loadavg()[0]!.toFixed(1);
  return out;
}

/** One line per scenario a person can read beside the JSON. */
function printSmallGets(r: Record<string, unknown>): void {
  const lines = [`small GETs, ${String(r.concurrency)} clients, ${String(r.seconds)} s runs, load average ${String(r.loadAvgBefore)} → ${String(r.loadAvgAfter)}:`];
  for (const [name, v] of Object.entries(r)) {
    if (typeof v !== 'object' || v === null) continue;
    const x = v as Record<string, number | string | null>;
    lines.push(`  ${name.padEnd(13)} direct ${x.directRps} rps p50 ${x.directP50Ms} ms | gateway ${x.gatewayRps} rps p50 ${x.gatewayP50Ms} ms ratio ${x.ratio} (p50 ×${x.p50Ratio}, ${x.gatewayCpuUsPerRequest} µs CPU/req)` +
      (x.bareProxyRps !== undefined ? ` | bare Node proxy ${x.bareProxyRps} rps ratio ${x.bareProxyRatio} (${x.bareProxyCpuUsPerRequest} µs CPU/req)` : '') +
      (x.bareInGatewayProcessRatio !== undefined ? ` | the same in the gateway's process ratio ${x.bareInGatewayProcessRatio} (${x.bareInGatewayProcessCpuUsPerRequest} µs CPU/req)` : ''));
  }
  process.stdout.write(`\n${lines.join('\n')}\n`);
}

it.skipIf(!!skip)(`kubectl get pods -A with ${OBJECTS} pods, small GETs, Secret masking`, { timeout: 900_000 }, async () => {
  const direct = { base: cluster.server, auth: `Bearer ${cluster.adminToken}`, ca: cluster.caPem };
  const gw = { base: `https://127.0.0.1:${h.gateway.kubePort}/k8s/kube`, auth: `Bearer ${token}`, ca: caPem };
  const setupAgent = new Agent({ keepAlive: true, maxSockets: 16 });
  for (const ns of ['bench-a', 'bench-b', 'bench-c', 'bench-secrets']) {
    await call(setupAgent, direct.base, '/api/v1/namespaces', direct.auth, direct.ca, 'POST', JSON.stringify({ metadata: { name: ns } }));
    // no controller manager here: the ServiceAccount admission plugin wants the namespace's default account
    await call(setupAgent, direct.base, `/api/v1/namespaces/${ns}/serviceaccounts`, direct.auth, direct.ca, 'POST', JSON.stringify({ metadata: { name: 'default' } }));
  }
  const create = async (n: number, make: (i: number) => [string, unknown]) => {
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < n) {
        const i = next++;
        const [path, obj] = make(i);
        const r = await call(setupAgent, direct.base, path, direct.auth, direct.ca, 'POST', JSON.stringify(obj));
        if (r.status !== 201) throw new Error(`create ${path}: ${r.status} ${r.text ?? ''}`);
      }
    }));
  };
  await create(OBJECTS, (i) => {
    const ns = ['bench-a', 'bench-b', 'bench-c'][i % 3]!;
    return [`/api/v1/namespaces/${ns}/pods`, {
      metadata: { name: `web-${i}`, labels: { app: 'web', tier: `t${i % 7}` }, annotations: { 'bench/note': `pod number ${i}` } },
      spec: { containers: [{ name: 'app', image: 'registry.example.com/web:1.2.3', ports: [{ containerPort: 8080 }], env: [{ name: 'MODE', value: 'bench' }], resources: { requests: { cpu: '10m', memory: '16Mi' } } }], nodeName: `node-${i % 10}` },
    }];
  });
  await create(OBJECTS, (i) => ['/api/v1/namespaces/bench-secrets/secrets', { metadata: { name: `s-${i}` }, data: { password: Buffer.from(`hunter2-${i}`).toString('base64'), token: Buffer.from(`tok-${i}-${'x'.repeat(40)}`).toString('base64') } }]);

  if (process.env.K8S_BENCH_ONLY === 'small-gets') {
    const smallGets = await smallGetRuns(direct, gw, tlsMaterial);
    printSmallGets(smallGets);
    process.stdout.write(`\nK8S-BENCH ${JSON.stringify({ smallGets })}\n`);
    setupAgent.destroy();
    return;
  }

  // 1. kubectl get pods -A, real kubectl each way (process start and discovery cache included)
  const kcGw = k.kubeconfig(h.gateway, 'kube', token);
  const kubectl = async (kubeconfig: string): Promise<number> => {
    const t0 = performance.now();
    const r = await runKubectl(cluster.bins.kubectl, ['--kubeconfig', kubeconfig, 'get', 'pods', '-A', '--no-headers'], { env: { KUBECACHEDIR: `${k.dir}/cache-${kubeconfig === cluster.kubeconfig ? 'd' : 'g'}` } });
    const ms = performance.now() - t0;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').length).toBe(OBJECTS);
    return ms;
  };
  await kubectl(cluster.kubeconfig);
  await kubectl(kcGw);
  const kDirect: number[] = [];
  const kGw: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    kDirect.push(await kubectl(cluster.kubeconfig));
    kGw.push(await kubectl(kcGw));
  }

  // 2. the list request alone (Table, as kubectl asks), keep-alive client
  const listAgentD = new Agent({ keepAlive: true, maxSockets: 1 });
  const listAgentG = new Agent({ keepAlive: true, maxSockets: 1 });
  const list = async (side: typeof direct, agent: Agent): Promise<number> => {
    const t0 = performance.now();
    const r = await call(agent, side.base, '/api/v1/pods?limit=500', side.auth, side.ca);
    expect(r.status).toBe(200);
    return performance.now() - t0;
  };
  const lDirect: number[] = [];
  const lGw: number[] = [];
  for (let i = 0; i < RUNS * 2; i++) {
    lDirect.push(await list(direct, listAgentD));
    lGw.push(await list(gw, listAgentG));
  }

  // 3. small GETs per second: a load generator in its own process (bench/lib/http-load.mjs), 16
  // concurrent keep-alive clients, direct and gateway alternating; the gateway's CPU over its runs
  const smallGets = await smallGetRuns(direct, gw, tlsMaterial);
  printSmallGets(smallGets);

  // 4. Secret masking: the 1,000-Secret list through the gateway, and the masker alone on the same body
  const sDirect: number[] = [];
  const sGw: number[] = [];
  let body = '';
  for (let i = 0; i < RUNS; i++) {
    let t0 = performance.now();
    const d = await call(listAgentD, direct.base, '/api/v1/namespaces/bench-secrets/secrets', direct.auth, direct.ca);
    sDirect.push(performance.now() - t0);
    body = d.text!;
    t0 = performance.now();
    const g = await call(listAgentG, gw.base, '/api/v1/namespaces/bench-secrets/secrets', gw.auth, gw.ca);
    sGw.push(performance.now() - t0);
    expect(g.text).not.toContain(Buffer.from('hunter2-1').toString('base64'));
  }
  const masking = createKubeMasking(parsePolicyDocument(POLICY), { hmacKey: Buffer.alloc(32) })!;
  const info = parseRequestInfo('GET', '/api/v1/namespaces/bench-secrets/secrets');
  const maskMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const r = masking.maskJsonText(Buffer.from(body), info);
    maskMs.push(performance.now() - t0);
    expect(r.stats.secrets).toBe(OBJECTS);
  }

  const result = {
    objects: OBJECTS,
    runs: RUNS,
    kubectlGetPodsA: { directP50Ms: +pct(kDirect, 50).toFixed(1), gatewayP50Ms: +pct(kGw, 50).toFixed(1), ratioP50: +(pct(kGw, 50) / pct(kDirect, 50)).toFixed(3), target: '<= 1.2' },
    listPodsRequest: { directP50Ms: +pct(lDirect, 50).toFixed(1), gatewayP50Ms: +pct(lGw, 50).toFixed(1), ratioP50: +(pct(lGw, 50) / pct(lDirect, 50)).toFixed(3) },
    smallGets,
    secretList: {
      bytes: Buffer.byteLength(body), directP50Ms: +pct(sDirect, 50).toFixed(1), gatewayP50Ms: +pct(sGw, 50).toFixed(1), ratioP50: +(pct(sGw, 50) / pct(sDirect, 50)).toFixed(3),
      maskingP50Ms: +pct(maskMs, 50).toFixed(1), maskingShareOfGateway: +(pct(maskMs, 50) / pct(sGw, 50)).toFixed(3),
    },
  };
  process.stdout.write(`\nK8S-BENCH ${JSON.stringify(result)}\n`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/k8s-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, `${JSON.stringify(result, null, 2)}\n`);
  setupAgent.destroy();
  listAgentD.destroy();
  listAgentG.destroy();
});
