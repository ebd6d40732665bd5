import type { AddressInfo } from 'node:net';
import type { ProtocolModule, SessionCore } from '../core/session-core.types.js';
import { IdentityBuffers } from '../core/identity-buffers.js';
import { SshListener } from './ssh-listener.js';
import { commandPolicyFor, type CommandPolicyOptions } from '../terminal/command-policy.js';

/**
 * The SSH protocol module: the listener (GATEWAY_SSH_PORT/HOST) and its sessions (ssh-session.ts),
 * LiveSessions of the core.
 */
export class SshModule implements ProtocolModule {
  readonly protocol = 'ssh';
  private listener: SshListener | null = null;

  constructor(private readonly opts: CommandPolicyOptions) {}

  async listen(core: SessionCore): Promise<AddressInfo> {
    const env = core.env;
    const listener = new SshListener({
      core,
      poolKey: env.GATEWAY_POOL_KEY,
      policyFor: commandPolicyFor(core, this.opts),
      loginGraceMs: env.GATEWAY_SSH_LOGIN_GRACE_MS,
      maxAuthFailures: env.GATEWAY_SSH_MAX_AUTH_FAILURES,
      maxChannels: env.GATEWAY_SSH_MAX_CHANNELS,
      // its own instance: an identity's share bounds its SSH channels apart from its Kubernetes requests
      buffers: new IdentityBuffers(core.buffers, env.GATEWAY_SESSION_BUFFER_BYTES),
    });
    core.metrics.sshBufferedBytesNow = () => listener.bufferedBytes();
    const port = await listener.start(env.GATEWAY_SSH_PORT, env.GATEWAY_SSH_HOST);
    this.listener = listener;
    return { address: env.GATEWAY_SSH_HOST, family: 'IPv4', port };
  }

  close(): Promise<void> {
    return this.listener?.stop() ?? Promise.resolve();
  }
}
