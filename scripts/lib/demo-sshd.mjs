// The SSH demo target of `pnpm start`: a private OpenSSH server on 127.0.0.1 (a free port), with its own
// host key and config in <PORTCULLIS_HOME>/sshd/, logging in as the user running the stack (sshd needs a
// real unix user) with a key only the api holds (it becomes the `demo-ssh` connection's secret).
// The keys are made once and kept, so the pinned host key stays the same from one start to the next.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';

export const SSHD_BINARY = process.env.PORTCULLIS_SSHD ?? '/usr/sbin/sshd';

/** How to get sshd where it is missing (printed instead of the SSH demo). */
export const SSHD_MISSING_HINT = `no ${SSHD_BINARY}: the SSH demo target is off. Install OpenSSH's server to get it (Debian/Ubuntu: sudo apt-get install -y openssh-server; macOS: it is /usr/sbin/sshd already), then pnpm start again`;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A private sshd's config (sshd_config text without the final newline): listening on 127.0.0.1:`port`,
 * host key `dir/host_ed25519`, keys only from `dir/authorized_keys` for the current `user`, SFTP
 * in-process. `extra` lines follow the base ones; sshd takes the first value of an option, so they
 * add options and cannot loosen these.
 */
export function sshdConfig({ port, dir, user, extra = [] }) {
  return [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${join(dir, 'host_ed25519')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'StrictModes no',
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    user === 'root' ? 'PermitRootLogin prohibit-password' : '',
    'Subsystem sftp internal-sftp',
    'PrintMotd no',
    'LogLevel INFO',
    ...extra,
  ].filter(Boolean).join('\n');
}

function keyPair(file, comment) {
  if (!existsSync(file) || !existsSync(`${file}.pub`)) {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { stdio: 'ignore' });
  }
  return { privateKey: readFileSync(file, 'utf8'), publicKey: readFileSync(`${file}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ') };
}

/**
 * Writes the sshd config and keys; returns what the stack needs to run it and register it, or
 * `{ missing: reason }` where there is no sshd (or no ssh-keygen) on this machine.
 */
export async function prepareDemoSshd(home) {
  if (!existsSync(SSHD_BINARY)) return { missing: SSHD_MISSING_HINT };
  const dir = join(home, 'sshd');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let host;
  let client;
  try {
    host = keyPair(join(dir, 'host_ed25519'), 'portcullis-demo-sshd');
    client = keyPair(join(dir, 'gateway_ed25519'), 'portcullis-gateway');
  } catch (err) {
    return { missing: `cannot make SSH keys with ssh-keygen (${err.message}): the SSH demo target is off` };
  }
  writeFileSync(join(dir, 'authorized_keys'), `${client.publicKey}\n`, { mode: 0o600 });
  // sshd wants its privilege separation directory; only root can make it (elsewhere it exists already)
  try {
    mkdirSync('/run/sshd', { recursive: true });
  } catch {
    // not root
  }
  if (process.platform === 'linux' && !existsSync('/run/sshd')) {
    return { missing: 'sshd needs its privilege separation directory /run/sshd (sudo mkdir -p /run/sshd): the SSH demo target is off until then' };
  }
  const port = await freePort();
  const user = userInfo().username;
  const config = sshdConfig({ port, dir, user });
  writeFileSync(join(dir, 'sshd_config'), `${config}\n`);
  return {
    command: SSHD_BINARY,
    args: ['-D', '-e', '-f', join(dir, 'sshd_config')],
    host: '127.0.0.1',
    port,
    user,
    hostPublicKey: host.publicKey,
    clientPrivateKey: client.privateKey,
  };
}
