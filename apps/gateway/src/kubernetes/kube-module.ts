import type { AddressInfo } from 'node:net';
import type { ActiveConfig } from '../config/config-store.js';
import type { ProtocolModule, SessionCore } from '../core/session-core.types.js';
import { commandPolicyFor, type CommandPolicyOptions } from '../terminal/command-policy.js';
import { IdentityBuffers } from '../core/identity-buffers.js';
import { KubeListener } from './kube-listener.js';

/**
 * The Kubernetes protocol module: the HTTPS listener (GATEWAY_KUBERNETES_PORT/HOST) in front of the
 * connections' API servers (kube-listener.ts). Its sessions (one per kubectl connection and
 * credential) are LiveSessions of the core; exec commands are decided by the SSH module's command policy.
 */
export class KubernetesModule implements ProtocolModule {
  readonly protocol = 'kubernetes';
  private listener: KubeListener | null = null;

  constructor(private readonly opts: CommandPolicyOptions) {}

  async listen(core: SessionCore): Promise<AddressInfo> {
    const env = core.env;
    const listener = new KubeListener({
      core,
      logger: core.logger,
      metrics: core.metrics,
      poolKey: env.GATEWAY_POOL_KEY,
      config: () => core.currentConfig(),
      policyLib: () => core.policyLib,
      shellPolicy: commandPolicyFor(core, this.opts),
      maxBodyBytes: env.GATEWAY_KUBERNETES_MAX_BODY_BYTES,
      buffers: new IdentityBuffers(core.buffers, env.GATEWAY_SESSION_BUFFER_BYTES),
    });
    const port = await listener.start(env.GATEWAY_KUBERNETES_PORT, env.GATEWAY_KUBERNETES_HOST);
    this.listener = listener;
    // a config that arrived while the listener started: its certificate applies now
    const current = core.currentConfig();
    if (current) listener.configChanged(current);
    return { address: env.GATEWAY_KUBERNETES_HOST, family: 'IPv4', port };
  }

  /** A new config: the pool's certificate, the upstreams of removed connections, the admission cache. */
  configChanged(config: ActiveConfig): void {
    this.listener?.configChanged(config);
  }

  close(): Promise<void> {
    return this.listener?.stop() ?? Promise.resolve();
  }
}
