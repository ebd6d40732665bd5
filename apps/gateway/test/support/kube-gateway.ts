import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateGatewayCa, issueGatewayServerCert } from '@portcullis/protocol';
import { kubeconfigText, runKubectl, type KubeCluster } from '../../../../test/support/kube-cluster.js';
import type { Gateway } from '../../src/gateway.js';
import type { HarnessConnection } from './harness.js';

/** The pool's gateway TLS material for tests: a CA (what kubeconfigs pin) and a server certificate for 127.0.0.1. */
export async function poolTls(): Promise<{ caPem: string; certPem: string; keyPem: string }> {
  const ca = await generateGatewayCa('portcullis-test-pool');
  const cert = await issueGatewayServerCert(ca, ['127.0.0.1', 'localhost']);
  return { caPem: ca.caPem, certPem: cert.certPem, keyPem: cert.keyPem };
}

/** A kubernetes connection to the test cluster, with the given credential of the gateway. */
export function kubeConnection(cluster: KubeCluster, o: { name: string; token?: string; policy?: string | null; impersonate?: boolean; groups?: string[] }): HarnessConnection {
  const url = new URL(cluster.server);
  return {
    name: o.name,
    kind: 'kubernetes',
    host: url.hostname,
    port: Number(url.port),
    database: '',
    username: '',
    password: JSON.stringify({ token: o.token ?? cluster.adminToken }),
    tls: 'disable',
    allowedGroups: o.groups ?? ['engineers'],
    policy: o.policy ?? null,
    recording: 'required',
    approvalMode: 'wait',
    kubernetes: { server: cluster.server, caPem: cluster.caPem, impersonate: o.impersonate ?? false },
  };
}

/** kubectl pointed at the gateway: kubeconfig server https://127.0.0.1:<port>/k8s/<connection>, the pool CA pinned. */
export class GatewayKubectl {
  readonly dir = mkdtempSync(join(tmpdir(), 'portcullis-kubectl-'));

  constructor(
    private readonly cluster: KubeCluster,
    private readonly caPem: string,
  ) {}

  kubeconfig(gateway: Gateway, connection: string, token: string): string {
    const file = join(this.dir, `kc-${randomBytes(4).toString('hex')}`);
    writeFileSync(file, kubeconfigText({ server: `https://127.0.0.1:${gateway.kubePort}/k8s/${connection}`, caPem: this.caPem, token }));
    return file;
  }

  run(kubeconfig: string, args: string[], input?: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return runKubectl(this.cluster.bins.kubectl, ['--kubeconfig', kubeconfig, ...args], { ...(input !== undefined ? { input } : {}), env: { KUBECACHEDIR: join(this.dir, 'cache'), ...env } });
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
