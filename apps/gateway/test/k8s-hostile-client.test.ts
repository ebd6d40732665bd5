import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeSkipReason, spawnKubectl, startKubeCluster, type KubeCluster } from '../../../test/support/kube-cluster.js';
import { startStandinKubelet, type StandinKubelet } from '../../../test/support/standin-kubelet.js';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { GatewayKubectl, kubeConnection, poolTls } from './support/kube-gateway.js';

/**
 * What one Kubernetes client (or what the cluster sends back) must not do to the gateway process: each
 * case ends that request alone, and another request afterwards is answered. kubectl v1.32 → gateway →
 * real kube-apiserver v1.32 → a stand-in kubelet (test/support/standin-kubelet.ts) serving pod logs.
 */
const skip = kubeSkipReason();
if (skip) console.warn(`k8s-hostile-client: skipped: ${skip}`);

describe.skipIf(!!skip)('kubernetes: a client that goes away mid-stream', () => {
  let cluster: KubeCluster;
  let kubelet: StandinKubelet;
  let h: Harness;
  let k: GatewayKubectl;
  let kc: string;
  const follows: { write: (l: string) => void; end: () => void }[] = [];

  beforeAll(async () => {
    cluster = await startKubeCluster();
    kubelet = await startStandinKubelet(cluster, {
      node: 'standin-node',
      logs: (_path, isFollow, write, end) => {
        write('starting: alice@example.com\n');
        if (isFollow) follows.push({ write, end });
        else end();
      },
    });
    const sa = await cluster.kubectl(['create', 'sa', 'default', '-n', 'default']);
    expect(sa.code, sa.stderr).toBe(0);
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'default' }, spec: { nodeName: 'standin-node', containers: [{ name: 'app', image: 'example/web:1' }] } };
    const r = await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(pod) });
    expect(r.code, r.stderr).toBe(0);
    const tls = await poolTls();
    // a masking policy: pod logs are read line by line (the text relay) rather than passed through
    const policy = { name: 'mask-logs', guardrails: [], masking: [{ name: 'pii', detectors: ['EMAIL'], strategy: 'redact' }] };
    h = await startHarness({ tls, connections: [kubeConnection(cluster, { name: 'kube', policy: policy.name })], policies: [{ name: policy.name, version: 1, document: policy }] });
    k = new GatewayKubectl(cluster, tls.caPem);
    kc = k.kubeconfig(h.gateway, 'kube', await h.credential({ cn: 'kube', sub: 'carol' }));
  }, 180_000);

  afterAll(async () => {
    for (const f of follows) f.end();
    await h?.stop();
    await kubelet?.stop();
    await cluster?.stop();
    k?.cleanup();
  });

  // the masked log relay read the API server's response with for-await; a client leaving closes the
  // upstream request, the response is aborted, the loop threw, and nothing caught the promise it was in:
  // an unhandled rejection, which stops a Node 20 process (every user of the gateway with it)
  it('kubectl logs -f killed mid-stream: that request ends, the gateway answers the next one', async () => {
    for (let round = 0; round < 3; round++) {
      const before = follows.length;
      const run = spawnKubectl(cluster.bins.kubectl, ['--kubeconfig', kc, 'logs', '-f', 'web']);
      const closed = new Promise<void>((resolve) => run.proc.once('close', () => resolve()));
      try {
        await waitFor(() => follows.length > before && run.output().stdout.includes('starting: '), 15_000, 50);
        expect(run.output().stdout).not.toContain('alice@example.com');
        // a partial line waits in the relay for its end (the idle flush): the client goes while it waits
        follows[follows.length - 1]!.write('partial line, no newline yet');
      } finally {
        run.proc.kill('SIGKILL');
      }
      await closed;
      // the kubelet keeps writing into the stream nobody reads any more
      follows[follows.length - 1]!.write(' and its end\n');
    }
    // the gateway is alive and answers: a plain request and a finished log
    const pods = await k.run(kc, ['get', 'pods', '-o', 'name']);
    expect(pods.stdout.trim()).toBe('pod/web');
    const logs = await k.run(kc, ['logs', 'web']);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toMatch(/^starting: /);
  });
});
