import { generateSshEd25519 } from '@portcullis/protocol';
import { startSshd, type Sshd } from '../../../../test/support/sshd.js';
import { startHarness, type Harness, type HarnessConnection, type HarnessOptions } from './harness.js';
import { runProgram, type ProgramResult } from './run-program.js';

/**
 * A gateway test world for SSH: a private sshd (the target), a harness whose pool has an SSH host
 * key and whose connection `box` (kind ssh) points at the sshd with the key it accepts, pinned to
 * its host key. Helpers run the real OpenSSH clients through the gateway with a credential.
 */
export interface SshWorld {
  h: Harness;
  sshd: Sshd;
  /** the pool's host key (public line): what a client's known_hosts would pin */
  gatewayHostKey: string;
  connection: HarnessConnection;
  port(): number;
  /** common OpenSSH client options for the gateway (no known_hosts, password-only auth, no config) */
  clientOptions(extra?: string[]): string[];
  /** `ssh` through the gateway with `token` as the password (sshpass) */
  ssh(token: string, args: string[], opts?: { input?: string | Buffer; timeoutMs?: number; user?: string }): Promise<ProgramResult>;
  /** another program of the OpenSSH family (scp, sftp) with the token as the password */
  run(program: 'scp' | 'sftp', token: string, args: string[], opts?: { input?: string | Buffer; timeoutMs?: number }): Promise<ProgramResult>;
  stop(): Promise<void>;
}

export const SSH_CONNECTION = 'box';

export async function startSshWorld(opts: Omit<HarnessOptions, 'connection' | 'connections'> & { connection?: Partial<HarnessConnection> } = {}): Promise<SshWorld> {
  const sshd = await startSshd();
  const hostKey = generateSshEd25519('gateway-pool');
  const ca = generateSshEd25519('user-ca');
  const connection: HarnessConnection = {
    name: SSH_CONNECTION,
    kind: 'ssh',
    host: sshd.host,
    port: sshd.port,
    database: '',
    username: sshd.user,
    password: JSON.stringify({ privateKey: sshd.clientKey.privateKey }),
    tls: 'disable',
    allowedGroups: ['engineers'],
    policy: null,
    recording: 'required',
    approvalMode: 'wait',
    ssh: { hostKeys: [sshd.hostPublicKey] },
    ...opts.connection,
  } as HarnessConnection;
  let h: Harness;
  try {
    h = await startHarness({ ...opts, initialSnapshot: false, connection: { policy: null } });
    await h.putSnapshot({ connections: [...h.snapshotInput.connections, connection], ssh: { hostKey: hostKey.privateKey, userCaPublicKey: ca.publicKey } });
  } catch (err) {
    await sshd.stop();
    throw err;
  }
  const port = (): number => h.gateway.sshPort;
  const clientOptions = (extra: string[] = []): string[] => [
    '-F', '/dev/null',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'LogLevel=ERROR',
    '-o', 'PubkeyAuthentication=no',
    '-o', 'PreferredAuthentications=password',
    '-o', 'NumberOfPasswordPrompts=1',
    '-o', 'ConnectTimeout=20',
    ...extra,
  ];
  return {
    h,
    sshd,
    gatewayHostKey: hostKey.publicKey,
    connection,
    port,
    clientOptions,
    ssh: (token, args, o = {}) =>
      runProgram('sshpass', ['-e', 'ssh', ...clientOptions(), '-p', String(port()), `${o.user ?? SSH_CONNECTION}@127.0.0.1`, ...args], {
        env: { SSHPASS: token }, ...(o.input !== undefined ? { input: o.input } : {}), timeoutMs: o.timeoutMs ?? 30_000,
      }),
    run: (program, token, args, o = {}) =>
      runProgram('sshpass', ['-e', program, ...clientOptions(), program === 'scp' ? '-P' : '-P', String(port()), ...args], {
        env: { SSHPASS: token }, ...(o.input !== undefined ? { input: o.input } : {}), timeoutMs: o.timeoutMs ?? 60_000,
      }),
    stop: async () => {
      await h.stop().catch(() => undefined);
      await sshd.stop();
    },
  };
}
