import type { AddressInfo } from 'node:net';
import { ListenerModule } from '../core/listener-module.js';
import type { SessionCore } from '../core/session-core.types.js';
import { commandPolicyFor, type SshWiring } from '../ssh/ssh-module.js';
import { KubeBuffers } from './kube-buffers.js';
import { KubeListener } from './kube-listener.js';

/**
 * The Kubernetes protocol module: the HTTPS listener (GATEWAY_KUBERNETES_PORT/HOST) in front of the
 * connections' API servers (kube-listener.ts). Its sessions (one per kubectl connection and
 * credential) take the event publisher, auth-failure trail and approvals from the same wiring as
 * the SSH module's (transitional, until they are LiveSessions of core.sessions).
 */
export class KubernetesModule extends ListenerModule<KubeListener> {
  readonly protocol = 'kubernetes';

  constructor(private readonly wiring: SshWiring) {
    super();
  }

  async listen(core: SessionCore): Promise<AddressInfo> {
    const env = core.env;
    const w = this.wiring;
    const listener = new KubeListener({
      gatewayId: core.gatewayId,
      pool: core.pool,
      logger: core.logger,
      metrics: core.metrics,
      poolKey: env.GATEWAY_POOL_KEY,
      config: () => core.currentConfig(),
      policyLib: () => core.policyLib,
      publisher: () => w.publisher(),
      authFailed: (f, connection) => w.authFailed(f, connection),
      recordingAvailable: () => core.recordingAvailable(),
      approvals: () => w.approvals(),
      shellPolicy: commandPolicyFor(core, w),
      maxBodyBytes: env.GATEWAY_KUBERNETES_MAX_BODY_BYTES,
      buffers: new KubeBuffers(core.buffers, env.GATEWAY_SESSION_BUFFER_BYTES),
    });
    const port = await listener.start(env.GATEWAY_KUBERNETES_PORT, env.GATEWAY_KUBERNETES_HOST);
    this.listener = listener;
    // a config that arrived while the listener started: its certificate applies now
    const current = core.currentConfig();
    if (current) listener.configChanged(current);
    return { address: env.GATEWAY_KUBERNETES_HOST, family: 'IPv4', port };
  }

}
