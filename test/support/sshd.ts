/**
 * A private OpenSSH server for one test file: its own host key, config and authorized_keys in a temp
 * dir, listening on a free port of 127.0.0.1, run as the current user in the foreground
 * (`sshd -D -e -f CONFIG`). Stop it in afterAll; it is killed with the test process too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { generateSshEd25519 } from '@portcullis/protocol';
import { sshdConfig } from '../../scripts/lib/demo-sshd.mjs';
import { freePort } from './free-port.js';

export const SSHD_BINARY = process.env.SSHD_BINARY ?? '/usr/sbin/sshd';

export interface Sshd {
  host: string;
  port: number;
  /** the login user (the user running the tests: sshd cannot switch users without root) */
  user: string;
  /** the server's host public key line (`ssh-ed25519 AAAA…`): what a connection pins */
  hostPublicKey: string;
  /** a client key sshd accepts for `user` (OpenSSH private key text) and its public line */
  clientKey: { privateKey: string; publicKey: string };
  /** the temp dir (config, keys; tests may put files under `dir/files`) */
  dir: string;
  /** sshd's log so far (stderr, -e) */
  log(): string;
  stop(): Promise<void>;
}

export async function startSshd(opts: { extraConfig?: string } = {}): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-sshd-'));
  mkdirSync(join(dir, 'files'));
  // privilege separation directory: sshd refuses to start without it
  mkdirSync('/run/sshd', { recursive: true });
  const host = generateSshEd25519('test-sshd-host');
  const client = generateSshEd25519('portcullis-gateway');
  writeFileSync(join(dir, 'host_ed25519'), host.privateKey, { mode: 0o600 });
  writeFileSync(join(dir, 'authorized_keys'), `${client.publicKey}\n`, { mode: 0o600 });
  const port = await freePort();
  const user = userInfo().username;
  // the demo's base config (scripts/lib/demo-sshd.mjs), and what the tests need besides
  const config = sshdConfig({
    port,
    dir,
    user,
    extra: ['AllowTcpForwarding yes', 'AcceptEnv LANG LC_* PORTCULLIS_*', 'PrintLastLog no', 'MaxStartups 200:30:400', 'MaxSessions 100', opts.extraConfig ?? ''],
  });
  writeFileSync(join(dir, 'sshd_config'), `${config}\n`);
  let log = '';
  const child: ChildProcess = spawn(SSHD_BINARY, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (b: Buffer) => {
    log += b.toString();
    if (log.length > 1_000_000) log = log.slice(-500_000);
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sshd did not start:\n${log}`)), 10_000);
    const check = (): void => {
      if (/Server listening on/.test(log)) {
        clearTimeout(timer);
        child.stderr!.off('data', check);
        resolve();
      }
    };
    child.stderr!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sshd exited (${code}):\n${log}`));
    });
  });
  return {
    host: '127.0.0.1',
    port,
    user,
    hostPublicKey: host.publicKey.split(' ').slice(0, 2).join(' '),
    clientKey: client,
    dir,
    log: () => log,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
