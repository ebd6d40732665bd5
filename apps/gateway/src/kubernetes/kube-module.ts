import type { AddressInfo } from 'node:net';
import type { ActiveConfig } from '../config/config-store.js';
import type { ProtocolModule, SessionCore } from '../core/session-core.types.js';
import type { SshWiring } from '../ssh/ssh-module.js';
import { NO_POLICY, sshPolicyOf } from '../ssh/ssh-policy.js';
import { KubeListener } from './kube-listener.js';

/**
 * The Kubernetes protocol module: the HTTPS listener (GATEWAY_KUBERNETES_PORT/HOST) in front of the
 * connections' API servers (kube-listener.ts). Its sessions (one per kubectl connection and
 * credential) take the event publisher, auth-failure trail and approvals from the same wiring as
 * the SSH module's (transitional, until they are LiveSessions of core.sessions).
 */
export class KubernetesModule implements ProtocolModule {
  readonly protocol = 'kubernetes';
  listener: KubeListener | null = null;

  constructor(private readonly wiring: SshWiring) {}

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
      shellPolicy: (policy) => w.sshPolicy?.(policy) ?? (policy && core.policyLib ? sshPolicyOf(policy, core.currentConfig()!.maskingKey, core.policyLib) : NO_POLICY),
      maxBodyBytes: env.GATEWAY_KUBERNETES_MAX_BODY_BYTES,
    });
    const port = await listener.start(env.GATEWAY_KUBERNETES_PORT, env.GATEWAY_KUBERNETES_HOST);
    this.listener = listener;
    // a config that arrived while the listener started: its certificate applies now
    const current = core.currentConfig();
    if (current) listener.configChanged(current);
    return { address: env.GATEWAY_KUBERNETES_HOST, family: 'IPv4', port };
  }

  async close(): Promise<void> {
    await this.listener?.stop();
  }

  configChanged(config: ActiveConfig): void {
    this.listener?.configChanged(config);
  }

  recordingLost(): void {
    this.listener?.recordingLost();
  }

  liveSessions(): number {
    return this.listener?.liveSessions ?? 0;
  }
}
