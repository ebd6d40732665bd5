import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeSkipReason, spawnKubectl, startKubeCluster, type KubeCluster } from '../../../test/support/kube-cluster.js';
import { startStandinKubelet, type StandinKubelet } from '../../../test/support/standin-kubelet.js';
import { readSessionEvents, startHarness, waitFor, type Harness } from './support/harness.js';
import { GatewayKubectl, kubeConnection, poolTls } from './support/kube-gateway.js';

/**
 * Pod logs through the gateway: kubectl v1.32 → gateway → real kube-apiserver v1.32 → a STAND-IN
 * KUBELET served by this test on 127.0.0.1 (there is no kubelet on these machines: a Node object's
 * status points the API server at the test's HTTPS server, which answers /containerLogs). What is
 * under test is the gateway's streaming and masking of what the API server relays, not a kubelet.
 */
const skip = kubeSkipReason();
if (skip) console.warn(`k8s-streams: skipped: ${skip}`);

describe.skipIf(!!skip)('pod logs through the gateway (stand-in kubelet)', () => {
  let cluster: KubeCluster;
  let kubelet: StandinKubelet;
  let h: Harness;
  let k: GatewayKubectl;
  let kc: string;
  let follow: { write: (l: string) => void; end: () => void } | null = null;

  beforeAll(async () => {
    cluster = await startKubeCluster();
    kubelet = await startStandinKubelet(cluster, {
      node: 'standin-node',
      logs: (_path, isFollow, write, end) => {
        write('starting\n');
        write('user alice@example.com logged in with card 4111 1111 1111 1111\n');
        if (isFollow) follow = { write, end };
        else end();
      },
    });
    const sa = await cluster.kubectl(['create', 'sa', 'default', '-n', 'default']);
    expect(sa.code, sa.stderr).toBe(0);
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'default' }, spec: { nodeName: 'standin-node', containers: [{ name: 'app', image: 'example/web:1' }] } };
    const r = await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(pod) });
    expect(r.code, r.stderr).toBe(0);
    const tls = await poolTls();
    const policy = { name: 'logs', masking: [{ name: 'pii', detectors: ['EMAIL', 'CREDIT_CARD'], strategy: 'redact' }] };
    h = await startHarness({ tls, connections: [kubeConnection(cluster, { name: 'kube', policy: policy.name })], policies: [{ name: policy.name, version: 1, document: policy }] });
    k = new GatewayKubectl(cluster, tls.caPem);
    kc = k.kubeconfig(h.gateway, 'kube', await h.credential({ cn: 'kube', sub: 'carol' }));
  });

  afterAll(async () => {
    await h?.stop();
    await kubelet?.stop();
    await cluster?.stop();
    k?.cleanup();
  });

  it('kubectl logs: lines pass the content detectors', async () => {
    const direct = await cluster.kubectl(['logs', 'web']);
    expect(direct.stdout).toContain('alice@example.com');
    const r = await k.run(kc, ['logs', 'web']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('starting\n');
    expect(r.stdout).toContain('logged in with card');
    expect(r.stdout).not.toContain('alice@example.com');
    expect(r.stdout).not.toContain('4111 1111 1111 1111');
    expect(kubelet.requests.some((q) => q.startsWith('GET /containerLogs/default/web/app'))).toBe(true);
  });

  it('kubectl logs -f stays open and streams masked lines as they come', async () => {
    const run = spawnKubectl(cluster.bins.kubectl, ['--kubeconfig', kc, 'logs', '-f', 'web']);
    const closed = new Promise<number>((resolve) => run.proc.once('close', (c) => resolve(c ?? -1)));
    try {
      await waitFor(() => follow !== null && run.output().stdout.includes('logged in'), 15_000, 50);
      follow!.write('later: bob@example.com\n');
      await waitFor(() => run.output().stdout.includes('later: '), 15_000, 50);
      expect(run.output().stdout).not.toContain('bob@example.com');
      follow!.write('still streaming\n');
      await waitFor(() => run.output().stdout.includes('still streaming'), 15_000, 50);
      follow!.end();
      expect(await closed).toBe(0);
    } finally {
      run.proc.kill();
    }
    const events = await readSessionEvents(h, undefined, 1, 10_000);
    const logs = events.filter((e) => e.type === 'kube.request' && (e.data as { subresource?: string }).subresource === 'log');
    expect(logs.some((e) => (e.data as { phase?: string }).phase === 'start')).toBe(true);
    await waitFor(async () => (await readSessionEvents(h, undefined, 1, 5000)).some((e) => e.type === 'kube.request' && (e.data as { phase?: string; masked?: number }).phase === 'end' && ((e.data as { masked?: number }).masked ?? 0) > 0), 10_000, 200);
  });
});
