/**
 * Kubernetes through the gateway vs direct, run by bench/k8s-bench.mjs (not part of `pnpm test`: its
 * name does not end in .test.ts). A real kube-apiserver v1.32 with 1,000 pods and 1,000 Secrets:
 *  - `kubectl get pods -A` (real kubectl, process start included) and the raw list request, p50 each way;
 *  - small GETs (one namespace object) per second with keep-alive clients, each way;
 *  - a 1,000-Secret list through the gateway (masked), and the share of its time spent masking.
 * Direct and gateway runs alternate so load on the shared machine hits both alike. Ratios are from one run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
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
let token: string;

beforeAll(async () => {
  if (skip) return;
  cluster = await startKubeCluster();
  const tls = await poolTls();
  caPem = tls.caPem;
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

  // 3. small GETs per second, 16 concurrent keep-alive clients
  const rps = async (side: typeof direct): Promise<number> => {
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    let n = 0;
    const end = performance.now() + RPS_SECONDS * 1000;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (performance.now() < end) {
        const r = await call(agent, side.base, '/api/v1/namespaces/default', side.auth, side.ca);
        if (r.status !== 200) throw new Error(`small GET: ${r.status}`);
        n++;
      }
    }));
    agent.destroy();
    return n / RPS_SECONDS;
  };
  await rps(direct);
  await rps(gw);
  const rpsDirect = [await rps(direct)];
  const rpsGw = [await rps(gw)];
  rpsDirect.push(await rps(direct));
  rpsGw.push(await rps(gw));

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
    smallGets: { directRps: Math.round(Math.max(...rpsDirect)), gatewayRps: Math.round(Math.max(...rpsGw)), ratio: +(Math.max(...rpsGw) / Math.max(...rpsDirect)).toFixed(3), target: '>= 0.8' },
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
