import type { AddressInfo } from 'node:net';
import type { AuthFailure } from '@portcullis/protocol';
import type { ApprovalClient } from '../approvals/approval-client.js';
import type { ResolvedPolicy } from '../config/config-store.js';
import { ListenerModule } from '../core/listener-module.js';
import type { SessionCore } from '../core/session-core.types.js';
import type { EventPublisher } from '../events/event-publisher.js';
import { SshListener } from './ssh-listener.js';
import { NO_POLICY, sshPolicyOf } from './ssh-policy.js';
import type { SshPolicy } from './ssh-policy.types.js';

/**
 * What the SSH sessions still take from the gateway directly rather than through the SessionCore
 * (transitional: core.authenticate, core.startRecording and core.approvalsFor replace these).
 */
export interface SshWiring {
  publisher(): EventPublisher | null;
  authFailed(f: Omit<AuthFailure, 'surface'>, connection: string | null): void;
  approvals(): ApprovalClient | null;
  /** replaces the SSH decisions of each session (tests of the transport without the classifier) */
  sshPolicy?: (policy: ResolvedPolicy | null) => SshPolicy;
}

/**
 * The command and file decisions of a session under `policy` (SSH sessions, Kubernetes exec). A policy
 * exists only when the library loaded (ConfigStore marks every policy broken otherwise).
 */
export function commandPolicyFor(core: SessionCore, w: SshWiring): (policy: ResolvedPolicy | null) => SshPolicy {
  return (policy) => w.sshPolicy?.(policy) ?? (policy && core.policyLib ? sshPolicyOf(policy, core.currentConfig()!.maskingKey, core.policyLib) : NO_POLICY);
}

/** The SSH protocol module: the listener (GATEWAY_SSH_PORT/HOST) and its sessions (ssh-session.ts). */
export class SshModule extends ListenerModule<SshListener> {
  readonly protocol = 'ssh';

  constructor(private readonly wiring: SshWiring) {
    super();
  }

  async listen(core: SessionCore): Promise<AddressInfo> {
    const env = core.env;
    const w = this.wiring;
    const listener = new SshListener({
      gatewayId: core.gatewayId,
      pool: core.pool,
      logger: core.logger,
      metrics: core.metrics,
      poolKey: env.GATEWAY_POOL_KEY,
      config: () => core.currentConfig(),
      publisher: () => w.publisher(),
      authFailed: (f, connection) => w.authFailed(f, connection),
      recordingAvailable: () => core.recordingAvailable(),
      policyFor: commandPolicyFor(core, w),
      approvals: () => w.approvals(),
      loginGraceMs: env.GATEWAY_SSH_LOGIN_GRACE_MS,
      maxAuthFailures: env.GATEWAY_SSH_MAX_AUTH_FAILURES,
    });
    const port = await listener.start(env.GATEWAY_SSH_PORT, env.GATEWAY_SSH_HOST);
    this.listener = listener;
    return { address: env.GATEWAY_SSH_HOST, family: 'IPv4', port };
  }

}
