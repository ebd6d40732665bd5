import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApprovalsStack, type ApprovalsStack } from '../../../test/support/approvals-stack.js';
import { kubeSkipReason, spawnKubectl, startKubeCluster, type KubeCluster } from '../../../test/support/kube-cluster.js';
import { waitFor } from './support/harness.js';
import { GatewayKubectl, kubeConnection, poolTls } from './support/kube-gateway.js';

/**
 * A Kubernetes request held for approval: kubectl (real, v1.32) waits on its open request while an
 * approver decides through the api; approved → the same kubectl invocation completes against the
 * real kube-apiserver; denied → kubectl prints the gateway's Forbidden Status and nothing happened.
 */
const skip = kubeSkipReason();
if (skip) console.warn(`k8s-approvals: skipped: ${skip}`);

describe.skipIf(!!skip)('held Kubernetes requests (approvals)', () => {
  let cluster: KubeCluster;
  let s: ApprovalsStack;
  let k: GatewayKubectl;
  let kc: string;
  let conn: string;

  beforeAll(async () => {
    cluster = await startKubeCluster();
    const tls = await poolTls();
    s = await startApprovalsStack({ timeoutSeconds: 60, harness: { tls } });
    conn = `${s.connection}-k8s`;
    const policy = {
      name: `${conn}-policy`,
      guardrails: [{ name: 'prod-changes', action: 'require_approval', match: { kubernetes: { verbs: ['delete', 'deletecollection', 'patch'], namespaces: ['prod-*'] } }, reason: 'production changes need a second pair of eyes' }],
      approval: { approvers: [s.approverGroup], timeoutSeconds: 60 },
    };
    await s.h.putSnapshot({
      connections: [...s.h.snapshotInput.connections, kubeConnection(cluster, { name: conn, policy: policy.name })],
      policies: [...s.h.snapshotInput.policies, { name: policy.name, version: 1, document: policy }],
    });
    k = new GatewayKubectl(cluster, tls.caPem);
    kc = k.kubeconfig(s.h.gateway, conn, await s.credential({ cn: conn, sub: 'carol-k8s' }));
    expect((await cluster.kubectl(['create', 'ns', 'prod-a'])).code).toBe(0);
    expect((await cluster.kubectl(['create', 'cm', 'keep', '-n', 'prod-a', '--from-literal=a=b'])).code).toBe(0);
    expect((await cluster.kubectl(['create', 'cm', 'drop', '-n', 'prod-a', '--from-literal=a=b'])).code).toBe(0);
  });

  afterAll(async () => {
    await s?.prisma.approval.deleteMany({ where: { connection: conn } }).catch(() => undefined);
    await s?.stop();
    await cluster?.stop();
    k?.cleanup();
  });

  const pending = async () => {
    const end = Date.now() + 15_000;
    for (;;) {
      const rows = await s.prisma.approval.findMany({ where: { connection: conn, status: 'pending' }, select: { id: true, statement: true, rule: true } });
      if (rows.length) return rows;
      if (Date.now() > end) throw new Error('no pending approval');
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('approved: the same kubectl delete completes', async () => {
    const run = spawnKubectl(cluster.bins.kubectl, ['--kubeconfig', kc, 'delete', 'cm', 'drop', '-n', 'prod-a']);
    const closed = new Promise<number>((resolve) => run.proc.once('close', (c) => resolve(c ?? -1)));
    const [held] = await pending();
    expect(held!.statement).toBe('kubectl DELETE /api/v1/namespaces/prod-a/configmaps/drop');
    expect(held!.rule).toBe('prod-changes');
    // still there while held
    expect((await cluster.kubectl(['get', 'cm', 'drop', '-n', 'prod-a', '-o', 'name'])).stdout.trim()).toBe('configmap/drop');
    expect((await s.decide(held!.id, 'approve', 'ok')).status).toBe(200);
    const code = await closed;
    expect(code, run.output().stderr).toBe(0);
    expect(run.output().stdout).toContain('configmap "drop" deleted');
    expect(run.output().stderr).toMatch(new RegExp(`Warning: portcullis: approval ${held!.id} granted`));
    await waitFor(async () => (await cluster.kubectl(['get', 'cm', 'drop', '-n', 'prod-a', '--ignore-not-found', '-o', 'name'])).stdout.trim() === '', 10_000, 100);
  });

  it('denied: kubectl prints the Forbidden Status and nothing was deleted', async () => {
    const run = spawnKubectl(cluster.bins.kubectl, ['--kubeconfig', kc, 'delete', 'cm', 'keep', '-n', 'prod-a']);
    const closed = new Promise<number>((resolve) => run.proc.once('close', (c) => resolve(c ?? -1)));
    const [held] = await pending();
    expect((await s.decide(held!.id, 'deny', 'not today')).status).toBe(200);
    const code = await closed;
    expect(code).toBe(1);
    expect(run.output().stderr).toContain(`Error from server (Forbidden): portcullis: approval ${held!.id} denied`);
    expect(run.output().stderr).toContain('not today');
    expect((await cluster.kubectl(['get', 'cm', 'keep', '-n', 'prod-a', '-o', 'name'])).stdout.trim()).toBe('configmap/keep');
  });
});
