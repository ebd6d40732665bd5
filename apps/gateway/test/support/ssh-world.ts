import { generateSshEd25519 } from '@portcullis/protocol';
import { startSshd, type Sshd } from '../../../../test/support/sshd.js';
import { startHarness, type Harness, type HarnessConnection, type HarnessOptions } from './harness.js';
import { spawn } from 'node:child_process';
import { Client } from 'ssh2';
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
  /** the pool's user CA (OpenSSH private key text): tests sign user certificates with it */
  caPrivateKey: string;
  /** `ssh` through the gateway with `token` as the password (sshpass) */
  ssh(token: string, args: string[], opts?: { input?: string | Buffer; timeoutMs?: number; user?: string; options?: string[]; port?: number; env?: Record<string, string> }): Promise<ProgramResult>;
  /** another program of the OpenSSH family (scp, sftp) with the token as the password */
  run(program: 'scp' | 'sftp', token: string, args: string[], opts?: { input?: string | Buffer; timeoutMs?: number; options?: string[] }): Promise<ProgramResult>;
  /** starts `ssh` without waiting: its output so far, and its end */
  spawnSsh(token: string, args: string[], opts?: { options?: string[] }): SpawnedSsh;
  stop(): Promise<void>;
}

export const SSH_CONNECTION = 'box';

/** A world of its own: a harness (the gateway) and an sshd with the connection `box`. */
export async function startSshWorld(opts: Omit<HarnessOptions, 'connection' | 'connections'> & { connection?: Partial<HarnessConnection> } = {}): Promise<SshWorld> {
  const { connection, ...rest } = opts;
  const h = await startHarness({ ...rest, connection: { policy: null } });
  try {
    return await attachSshTarget(h, { name: SSH_CONNECTION, ...connection }, true);
  } catch (err) {
    await h.stop();
    throw err;
  }
}

/**
 * Adds an sshd target to a running harness: the pool's SSH host key and user CA in its snapshot, and
 * an ssh connection (replacing a connection of the same name). `ownsHarness`: stop() stops it too.
 * `given`: that sshd instead of a fresh one.
 */
export async function attachSshTarget(h: Harness, overrides: Partial<HarnessConnection> & { name: string }, ownsHarness = false, given?: Sshd): Promise<SshWorld> {
  // a given sshd (started by the caller, e.g. with a password user) is stopped with the world too
  const sshd = given ?? (await startSshd());
  const hostKey = generateSshEd25519('gateway-pool');
  const ca = generateSshEd25519('user-ca');
  const connection: HarnessConnection = {
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
    ...overrides,
  } as HarnessConnection;
  try {
    await h.putSnapshot({ connections: [...h.snapshotInput.connections.filter((c) => c.name !== connection.name), connection], ssh: { hostKey: hostKey.privateKey, userCaPublicKey: ca.publicKey } });
  } catch (err) {
    await sshd.stop();
    throw err;
  }
  const port = (): number => h.gateway.sshPort;
  // ssh takes the first value of an option: the caller's come first
  const clientOptions = (extra: string[] = []): string[] => [
    ...extra,
    '-F', '/dev/null',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    // INFO (the default) so the client prints the gateway's banners: why a login was refused
    '-o', 'LogLevel=INFO',
    '-o', 'PubkeyAuthentication=no',
    '-o', 'PreferredAuthentications=password',
    '-o', 'NumberOfPasswordPrompts=1',
    '-o', 'ConnectTimeout=20',
  ];
  return {
    h,
    sshd,
    gatewayHostKey: hostKey.publicKey,
    caPrivateKey: ca.privateKey,
    connection,
    port,
    clientOptions,
    ssh: (token, args, o = {}) =>
      quiet(runProgram('sshpass', ['-e', 'ssh', ...clientOptions(o.options), '-p', String(o.port ?? port()), `${o.user ?? connection.name}@127.0.0.1`, ...args], {
        env: { SSHPASS: token, ...o.env }, ...(o.input !== undefined ? { input: o.input } : {}), timeoutMs: o.timeoutMs ?? 30_000,
      })),
    run: (program, token, args, o = {}) =>
      quiet(runProgram('sshpass', ['-e', program, ...clientOptions(o.options), '-P', String(port()), ...args], {
        env: { SSHPASS: token }, ...(o.input !== undefined ? { input: o.input } : {}), timeoutMs: o.timeoutMs ?? 60_000,
      })),
    spawnSsh: (token, args, o = {}) => spawnProgram('sshpass', ['-e', 'ssh', ...clientOptions(o.options), '-p', String(port()), `${connection.name}@127.0.0.1`, ...args], { SSHPASS: token }),
    stop: async () => {
      if (ownsHarness) await h.stop().catch(() => undefined);
      await sshd.stop();
    },
  };
}

/** Without the client's "Permanently added … to the list of known hosts" notes (UserKnownHostsFile=/dev/null). */
export function withoutKnownHostNotes(stderr: string): string {
  return stderr.replace(/^Warning: Permanently added .*\r?\n/gm, '');
}

async function quiet(p: Promise<ProgramResult>): Promise<ProgramResult> {
  const r = await p;
  return { ...r, stderr: withoutKnownHostNotes(r.stderr) };
}

export interface SpawnedSsh {
  stdout(): string;
  stderr(): string;
  /** waits until stdout (or stderr) holds `text` */
  saw(text: string | RegExp, where?: 'stdout' | 'stderr'): Promise<void>;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  kill(): void;
}

/** A program left running (killed after 60 s at the latest). */
export function spawnProgram(cmd: string, args: string[], env: Record<string, string> = {}): SpawnedSsh {
  const p = spawn(cmd, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', LANG: 'C', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  p.stderr.on('data', (b: Buffer) => (stderr = withoutKnownHostNotes(stderr + b.toString())));
  const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    done,
    kill: () => p.kill('SIGKILL'),
    saw: async (text, where = 'stdout') => {
      const end = Date.now() + 20_000;
      const has = () => {
        const s = where === 'stdout' ? stdout : stderr;
        return typeof text === 'string' ? s.includes(text) : text.test(s);
      };
      while (!has()) {
        if (Date.now() > end || p.exitCode !== null) throw new Error(`never saw ${String(text)} on ${where}: ${stdout} / ${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

/** One ssh2 client connection through the world's gateway, with `token` as the password. */
export async function connectSsh2(w: SshWorld, token: string): Promise<Client> {
  const c = new Client();
  await new Promise<void>((resolve, reject) => {
    c.once('ready', () => resolve()).once('error', reject);
    c.connect({ host: '127.0.0.1', port: w.port(), username: w.connection.name, password: token, readyTimeout: 30_000 });
  });
  return c;
}
