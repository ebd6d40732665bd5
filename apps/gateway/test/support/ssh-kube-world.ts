import { startKubeCluster, type KubeCluster } from '../../../../test/support/kube-cluster.js';
import { startHarness, type Harness } from './harness.js';
import { GatewayKubectl, kubeConnection, poolTls } from './kube-gateway.js';
import { attachSshTarget, type SshWorld } from './ssh-world.js';

/**
 * One gateway with an SSH connection `box` (a private sshd) and, unless `kubeSkip` says why not, a
 * Kubernetes connection `kube` (a real kube-apiserver) with kubectl set up for the pool's CA.
 */
export interface SshKubeWorld {
  h: Harness;
  w: SshWorld;
  cluster: KubeCluster | null;
  k: GatewayKubectl | null;
  caPem: string;
  stop(): Promise<void>;
}

export async function startSshKubeWorld(kubeSkip: string | null): Promise<SshKubeWorld> {
  const tls = kubeSkip ? undefined : await poolTls();
  const cluster = kubeSkip ? null : await startKubeCluster();
  const h = await startHarness({ ...(tls ? { tls } : {}), connection: { policy: null }, ...(cluster ? { connections: [kubeConnection(cluster, { name: 'kube' })] } : {}) });
  const w = await attachSshTarget(h, { name: 'box' });
  const k = cluster && tls ? new GatewayKubectl(cluster, tls.caPem) : null;
  return {
    h, w, cluster, k, caPem: tls?.caPem ?? '',
    async stop() {
      await w.stop();
      await h.stop();
      await cluster?.stop();
      k?.cleanup();
    },
  };
}
