import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';

/**
 * A real Kubernetes API server (kube-apiserver v1.32 + etcd) for one test file, started as
 * ../shared/tools/kubernetes/start-test-cluster.sh does, on free ports in a temp dir, removed in stop().
 * The xz binaries are unpacked once per machine into os.tmpdir()/portcullis-kube-bin-<sha> and reused.
 *
 * No kubelet, scheduler or controllers: pods are stored, never run.
 */

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** ../shared beside the clone (CI, the main checkout); a git worktree one level deeper finds it one more up */
const TOOLS_DIR =
  process.env.KUBE_TOOLS_DIR ??
  [resolve(repoRoot, '../shared/tools/kubernetes'), resolve(repoRoot, '../../shared/tools/kubernetes')].find((d) => existsSync(join(d, 'kube-apiserver.xz'))) ??
  resolve(repoRoot, '../shared/tools/kubernetes');

export interface KubeBinaries {
  apiserver: string;
  kubectl: string;
}

function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Why the Kubernetes tests cannot run here (one line), or null when they can. */
export function kubeSkipReason(): string | null {
  if (!which('etcd')) return 'etcd is not installed (apt-get install -y etcd-server)';
  if (process.env.KUBE_APISERVER_BIN && process.env.KUBECTL_BIN) return null;
  if (!existsSync(join(TOOLS_DIR, 'kube-apiserver.xz')) || !existsSync(join(TOOLS_DIR, 'kubectl.xz'))) {
    return `no kube-apiserver/kubectl: ${TOOLS_DIR} is absent (set KUBE_APISERVER_BIN and KUBECTL_BIN to use your own)`;
  }
  if (!which('xz')) return 'xz is not installed';
  if (!which('openssl')) return 'openssl is not installed';
  return null;
}

function unpackOnce(xzFile: string, name: string): string {
  const sha = createHash('sha256').update(readFileSync(xzFile)).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), `portcullis-kube-bin-${sha}`);
  const out = join(dir, name);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  // unpack to a private name, then rename: a concurrent test file never runs a half-written binary
  const part = `${out}.${process.pid}.${randomBytes(3).toString('hex')}`;
  const r = spawnSync('sh', ['-c', `xz -dc "${xzFile}" > "${part}"`], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`cannot unpack ${xzFile}`);
  chmodSync(part, 0o755);
  renameSync(part, out);
  return out;
}

export function kubeBinaries(): KubeBinaries {
  if (process.env.KUBE_APISERVER_BIN && process.env.KUBECTL_BIN) {
    return { apiserver: process.env.KUBE_APISERVER_BIN, kubectl: process.env.KUBECTL_BIN };
  }
  return {
    apiserver: unpackOnce(join(TOOLS_DIR, 'kube-apiserver.xz'), 'kube-apiserver'),
    kubectl: unpackOnce(join(TOOLS_DIR, 'kubectl.xz'), 'kubectl'),
  };
}

export interface KubeUser {
  token: string;
  name: string;
  groups?: string[];
}

export interface KubeCluster {
  dir: string;
  server: string;
  port: number;
  /** the API server's self-signed CA (PEM) */
  caPem: string;
  caFile: string;
  /** cluster-admin (system:masters) token */
  adminToken: string;
  /** kubeconfig for the admin, straight to the API server */
  kubeconfig: string;
  bins: KubeBinaries;
  /** runs kubectl with the admin kubeconfig (or `kubeconfig`) */
  kubectl(args: string[], opts?: { kubeconfig?: string; input?: string; timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

/**
 * Starts etcd and kube-apiserver. `users` go into tokens.csv after the admin (for RBAC and
 * impersonation tests). Kill and clean up with stop(), also when the test failed.
 */
export async function startKubeCluster(opts: { users?: KubeUser[]; apiserverFlags?: string[] } = {}): Promise<KubeCluster> {
  const bins = kubeBinaries();
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-k8s-'));
  mkdirSync(join(dir, 'certs'));
  mkdirSync(join(dir, 'etcd'));
  const adminToken = randomBytes(24).toString('hex');
  const lines = [`${adminToken},admin,1,"system:masters"`, ...(opts.users ?? []).map((u, i) => `${u.token},${u.name},u${i + 2},"${(u.groups ?? []).join(',')}"`)];
  writeFileSync(join(dir, 'tokens.csv'), `${lines.join('\n')}\n`);
  const key = spawnSync('sh', ['-c', `openssl genrsa -out "${dir}/sa.key" 2048 2>/dev/null && openssl rsa -in "${dir}/sa.key" -pubout -out "${dir}/sa.pub" 2>/dev/null`]);
  if (key.status !== 0) throw new Error('openssl could not make the service-account key');

  const procs: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const p of procs.reverse()) {
      if (p.exitCode === null && p.signalCode === null) {
        const gone = new Promise<void>((r) => p.once('exit', () => r()));
        p.kill('SIGTERM');
        const t = setTimeout(() => p.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(t);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    // etcd takes three ports: client, peer and metrics
    const eport = await freePort();
    const peer = await freePort();
    const metrics = await freePort();
    const etcd = spawn('etcd', [
      '--name', 'test', '--data-dir', join(dir, 'etcd'),
      '--listen-client-urls', `http://127.0.0.1:${eport}`, '--advertise-client-urls', `http://127.0.0.1:${eport}`,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `test=http://127.0.0.1:${peer}`, '--listen-metrics-urls', `http://127.0.0.1:${metrics}`,
    ], { stdio: 'ignore' });
    procs.push(etcd);
    const port = await freePort();
    const api = spawn(bins.apiserver, [
      `--etcd-servers=http://127.0.0.1:${eport}`, '--bind-address=127.0.0.1', `--secure-port=${port}`,
      `--cert-dir=${join(dir, 'certs')}`, `--token-auth-file=${join(dir, 'tokens.csv')}`, '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${join(dir, 'sa.pub')}`, `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/24', '--advertise-address=127.0.0.1', '--endpoint-reconciler-type=none',
      ...(opts.apiserverFlags ?? []),
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    procs.push(api);
    let log = '';
    api.stderr!.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-4000);
    });
    const server = `https://127.0.0.1:${port}`;
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (api.exitCode !== null) throw new Error(`kube-apiserver exited: ${log.slice(-800)}`);
      if (Date.now() > deadline) throw new Error(`kube-apiserver not ready after 90 s: ${log.slice(-800)}`);
      const ok = await fetchReady(server, adminToken);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    const caFile = join(dir, 'certs', 'apiserver.crt');
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, kubeconfigText({ server, caFile, token: adminToken }));
    const cluster: KubeCluster = {
      dir, server, port, caFile, caPem: readFileSync(caFile, 'utf8'), adminToken, kubeconfig, bins, stop,
      kubectl: (args, o = {}) => runKubectl(bins.kubectl, ['--kubeconfig', o.kubeconfig ?? kubeconfig, ...args], o),
    };
    return cluster;
  } catch (err) {
    await stop();
    throw err;
  }
}

async function fetchReady(server: string, token: string): Promise<boolean> {
  const https = await import('node:https');
  return new Promise((resolveReady) => {
    const req = https.request(`${server}/readyz`, { headers: { authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: 2000 }, (res) => {
      res.resume();
      resolveReady(res.statusCode === 200);
    });
    req.on('error', () => resolveReady(false));
    req.on('timeout', () => {
      req.destroy();
      resolveReady(false);
    });
    req.end();
  });
}

/** A kubeconfig with a token or an exec plugin; `caFile` pins the server's CA. */
export function kubeconfigText(o: { server: string; caFile?: string; caPem?: string; token?: string; insecure?: boolean }): string {
  const ca = o.caFile ? `certificate-authority: ${JSON.stringify(o.caFile)}` : o.caPem ? `certificate-authority-data: ${Buffer.from(o.caPem).toString('base64')}` : 'insecure-skip-tls-verify: true';
  return [
    'apiVersion: v1', 'kind: Config',
    'clusters:', `- name: c`, `  cluster: {server: ${JSON.stringify(o.server)}, ${ca}}`,
    'users:', `- name: u`, `  user: {token: ${JSON.stringify(o.token ?? '')}}`,
    'contexts:', '- name: c', '  context: {cluster: c, user: u}', 'current-context: c', '',
  ].join('\n');
}

/** Runs kubectl to its end (no shell); a run that hangs past timeoutMs is killed and reported. */
export function runKubectl(bin: string, args: string[], o: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const p = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, HOME: tmpdir(), KUBECACHEDIR: join(tmpdir(), `kubecache-${process.pid}`), ...o.env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    p.on('close', (code) => {
      clearTimeout(t);
      resolveRun({ code: code ?? -1, stdout, stderr });
    });
    p.stdin.end(o.input ?? '');
  });
}

/** Starts kubectl and leaves it running (watches, held requests); the caller kills it. */
export function spawnKubectl(bin: string, args: string[], env: Record<string, string> = {}): { proc: ChildProcess; output: () => { stdout: string; stderr: string } } {
  const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: tmpdir(), ...env } });
  let stdout = '';
  let stderr = '';
  p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return { proc: p, output: () => ({ stdout, stderr }) };
}
