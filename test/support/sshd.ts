/**
 * A private OpenSSH server for one test file: its own host key, config and authorized_keys in a temp
 * dir, listening on a free port of 127.0.0.1, run as the current user in the foreground
 * (`sshd -D -e -f CONFIG`). Stop it in afterAll; it is killed with the test process too.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** A throwaway unix user that exists only inside the sshd's private mount namespace (startSshd's `passwordUser`). */
export interface SshdPasswordUser {
  name: string;
  password: string;
}

/**
 * Why a private mount namespace cannot be made here (null: it can). Password logins need a unix user
 * with a password, and the tests never touch the host's /etc/passwd or /etc/shadow: sshd runs in its own
 * mount namespace with copies bind-mounted over them, which takes root (or CAP_SYS_ADMIN).
 */
export function privateMountsUnavailable(): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-unshare-'));
  try {
    writeFileSync(join(dir, 'a'), 'a');
    writeFileSync(join(dir, 'b'), 'b');
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount --bind ${join(dir, 'a')} ${join(dir, 'b')} && cat ${join(dir, 'b')}`], { encoding: 'utf8', timeout: 10_000 });
    if (r.error) return `unshare is not available (${r.error.message})`;
    if (r.status !== 0 || r.stdout !== 'a') return `unshare -m / mount --bind are not permitted here (${(r.stderr || `exit ${r.status}`).trim().split('\n')[0]})`;
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function startSshd(opts: { extraConfig?: string; passwordUser?: SshdPasswordUser } = {}): Promise<Sshd> {
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
  // the demo's base config (scripts/lib/demo-sshd.mjs), and what the tests need besides.
  // The tests log in as the user running them, whose dotfiles are the host's business (on the CI image
  // root's ~/.bashrc runs `pyenv init`, whose rehash takes a lock that concurrent shells wait on and
  // prints to stderr when it races, and `pyenv virtualenv-init`, which runs pyenv at every prompt): the
  // target's shells must see only what the test runs.
  // `SetEnv SHLVL=1`: bash, started by sshd for `ssh host cmd`, sources ~/.bashrc unless SHLVL says it is
  // nested. `HOME=<dir>/home` (sshd applies SetEnv after it sets HOME; the session still starts in the
  // passwd home): an interactive login shell (`ssh -t`, a `shell` channel) reads /etc/profile and then
  // ~/.profile from this empty directory, not the host's. sshd keeps the first SetEnv line only: one line.
  const home = join(dir, 'home');
  mkdirSync(home);
  const config = sshdConfig({
    port,
    dir,
    user,
    extra: [
      'AllowTcpForwarding yes', 'AcceptEnv LANG LC_* PORTCULLIS_*', `SetEnv SHLVL=1 HOME=${home}`, 'PrintLastLog no', 'MaxStartups 200:30:400', 'MaxSessions 100', opts.extraConfig ?? '',
      // the base config turns passwords off (and sshd keeps a keyword's first value): a Match block, last,
      // turns them on for the throwaway user only
      ...(opts.passwordUser ? [`Match User ${opts.passwordUser.name}`, '  PasswordAuthentication yes'] : []),
    ],
  });
  writeFileSync(join(dir, 'sshd_config'), `${config}\n`);
  let log = '';
  const sshdArgs = ['-D', '-e', '-f', join(dir, 'sshd_config')];
  const child: ChildProcess = opts.passwordUser ? spawnWithUser(dir, opts.passwordUser, sshdArgs) : spawn(SSHD_BINARY, sshdArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
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

/** A uid no host account uses, for the namespace's throwaway user. */
const THROWAWAY_UID = 61_234;

/**
 * sshd in a private mount namespace where /etc/passwd and /etc/shadow are copies of the host's with one
 * more user (home: `dir/home-<name>`, shell /bin/sh, the password hashed by `openssl passwd -6`): the
 * host's files are never written, and the user is gone with the namespace.
 */
function spawnWithUser(dir: string, u: SshdPasswordUser, sshdArgs: string[]): ChildProcess {
  if (!/^[a-z_][a-z0-9_-]{0,30}$/.test(u.name)) throw new Error(`not a user name: ${u.name}`);
  const home = join(dir, `home-${u.name}`);
  mkdirSync(home);
  chmodSync(dir, 0o711); // the user's session goes through it to its home
  chownSync(home, THROWAWAY_UID, THROWAWAY_UID);
  const hash = spawnSync('openssl', ['passwd', '-6', '-stdin'], { input: `${u.password}\n`, encoding: 'utf8' });
  if (hash.status !== 0) throw new Error(`openssl passwd failed: ${hash.stderr}`);
  const passwd = join(dir, 'passwd');
  const shadow = join(dir, 'shadow');
  writeFileSync(passwd, `${readFileSync('/etc/passwd', 'utf8').trimEnd()}\n${u.name}:x:${THROWAWAY_UID}:${THROWAWAY_UID}::${home}:/bin/sh\n`, { mode: 0o644 });
  writeFileSync(shadow, `${readFileSync('/etc/shadow', 'utf8').trimEnd()}\n${u.name}:${hash.stdout.trim()}:20000:0:99999:7:::\n`, { mode: 0o600 });
  const quote = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;
  const script = `mount --bind ${quote(passwd)} /etc/passwd && mount --bind ${quote(shadow)} /etc/shadow && exec ${[SSHD_BINARY, ...sshdArgs].map(quote).join(' ')}`;
  return spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
}
