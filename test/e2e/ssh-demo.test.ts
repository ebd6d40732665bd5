// The SSH demo of `pnpm start` as printed (policy `default`), end to end with real clients: a demo agent gets a gateway credential and
// OpenSSH logs in through the gateway to the stack's private sshd with it as the password (sshpass), and
// again with `portcullis ssh` (a certificate from the api, the gateway verified by its known_hosts); the
// session's terminal comes back from GET /v1/sessions/{id}/recording.cast and asciinema reads it.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parseSshCertificate } from '@portcullis/protocol';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoAgentApiToken } from '../support/dev-idp-login.js';
import { startDemoStack, type DemoStack } from '../support/demo-stack.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const peers = existsSync('/usr/sbin/sshd') && existsSync('/usr/bin/sshpass');

describe.skipIf(!peers)('pnpm start SSH demo (demo-ssh) with real ssh (needs /usr/sbin/sshd and sshpass)', () => {
  let s: DemoStack;
  let token: string;
  const dir = mkdtempSync(join(tmpdir(), 'ssh-demo-'));
  beforeAll(async () => {
    s = await startDemoStack('sshdemo');
    token = await demoAgentApiToken(s.idp, s.api);
  }, 300_000);
  afterAll(async () => {
    await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('the printed command works: ssh -p <port> demo-ssh@127.0.0.1 with the credential as the password, the gateway pinned by known_hosts', async () => {
    expect(s.output()).toContain(`ssh -p ${s.sshPort} demo-ssh@127.0.0.1`);
    const cred = await s.rest('POST', '/v1/connections/demo-ssh/credentials', token, {});
    expect(cred.status).toBe(201);
    expect(cred.json.uri).toBe(`ssh://demo-ssh@127.0.0.1:${s.sshPort}`);
    const kh = await s.rest('GET', '/v1/connections/demo-ssh/ssh-known-hosts', token);
    writeFileSync(join(dir, 'known_hosts'), kh.text);
    const { stdout } = await run('sshpass', [
      '-p', cred.json.token, 'ssh', '-p', String(s.sshPort), '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes',
      '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', 'demo-ssh@127.0.0.1', 'echo', 'hello-through-the-gateway',
    ], { timeout: 60_000 });
    expect(stdout.trim()).toBe('hello-through-the-gateway');
    // the demo policy's detectors mask what the terminal shows
    const masked = await run('sshpass', [
      '-p', cred.json.token, 'ssh', '-p', String(s.sshPort), '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes',
      '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', 'demo-ssh@127.0.0.1', 'echo', 'card', '4111111111111111', 'end',
    ], { timeout: 60_000 });
    expect(masked.stdout).toMatch(/^card .+ end\s*$/);
    expect(masked.stdout).not.toContain('4111111111111111');
  });

  it('portcullis ssh demo-ssh: a certificate for a fresh key, and the session\'s terminal as asciicast', async () => {
    const home = join(dir, 'home');
    const { stdout } = await run(process.execPath, [join(ROOT, 'apps/cli/dist/main.js'), 'ssh', 'demo-ssh', '-o', 'BatchMode=yes', '--', 'echo', 'via-certificate'], {
      env: { ...process.env, HOME: home, PORTCULLIS_API: s.api, PORTCULLIS_TOKEN: token, PORTCULLIS_CLI_CONFIG: join(home, 'cli.json') },
      timeout: 60_000,
    });
    expect(stdout.trim()).toBe('via-certificate');
    // the certificate's key id is a credential bound to the key: as a password it is refused
    const keyId = parseSshCertificate(Buffer.from(readFileSync(join(home, '.portcullis', 'ssh', 'demo-ssh', 'cert.pub'), 'utf8').split(' ')[1]!, 'base64')).keyId;
    const asPassword = await run('sshpass', [
      '-p', keyId, 'ssh', '-p', String(s.sshPort), '-o', `UserKnownHostsFile=${join(home, '.portcullis', 'ssh', 'demo-ssh', 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes',
      '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1', 'demo-ssh@127.0.0.1', 'echo', 'must-not-run',
    ], { timeout: 60_000 }).catch((e: { stdout: string; stderr: string }) => e);
    expect(asPassword.stdout).not.toContain('must-not-run');
    expect(asPassword.stderr).toContain('bound to an SSH key');
    // the exec session's terminal, recorded through the real recorder (events may take a moment)
    let cast = '';
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const list = await s.rest('GET', '/v1/sessions?connection=demo-ssh&limit=20', s.bootstrap);
      for (const sess of (list.json ?? []) as { id: string }[]) {
        const r = await s.rest('GET', `/v1/sessions/${encodeURIComponent(sess.id)}/recording.cast`, s.bootstrap);
        if (r.status === 200 && r.text.includes('via-certificate')) cast = r.text;
      }
      if (cast) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(cast).toContain('"version":2');
    writeFileSync(join(dir, 'exec.cast'), cast);
    const played = await run('script', ['-qec', `stty -onlcr; asciinema cat '${join(dir, 'exec.cast')}'`, '/dev/null'], { env: { ...process.env, LANG: 'C.UTF-8' } });
    expect(played.stdout).toContain('via-certificate');
  });

  it('revoking the api token that minted an SSH certificate ends the OpenSSH session open with it (a clear message) and the certificate no longer logs in', async () => {
    // a token of its own: revoking it must not take the other tests' token along
    const own = await demoAgentApiToken(s.idp, s.api);
    const key = join(dir, 'revoked_key');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'e2e-revoked', '-f', key]);
    const signed = await s.rest('POST', '/v1/connections/demo-ssh/ssh-certificate', own, { publicKey: readFileSync(`${key}.pub`, 'utf8').trim() });
    expect(signed.status, signed.text).toBe(201);
    writeFileSync(`${key}-cert.pub`, `${signed.json.certificate}\n`);
    writeFileSync(join(dir, 'revoked_known_hosts'), signed.json.knownHosts);
    const sshArgs = (command: string[]) => [
      '-F', '/dev/null', '-i', key, '-o', `CertificateFile=${key}-cert.pub`, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
      '-o', `UserKnownHostsFile=${join(dir, 'revoked_known_hosts')}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'PreferredAuthentications=publickey',
      '-p', String(s.sshPort), 'demo-ssh@127.0.0.1', ...command,
    ];
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, LANG: 'C' };
    // an open session: a long command that has printed its first line
    const ssh = spawn('ssh', sshArgs(['echo session-open; sleep 300']), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    ssh.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    ssh.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const done = new Promise<number | null>((resolve) => ssh.on('close', resolve));
    try {
      const open = Date.now() + 60_000;
      while (!stdout.includes('session-open')) {
        if (Date.now() > open || ssh.exitCode !== null) throw new Error(`the ssh session did not open: ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const jti = (JSON.parse(Buffer.from(own.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;
      const revoked = await s.rest('POST', '/v1/auth/revoke', own, { jti });
      expect(revoked.status, revoked.text).toBeLessThan(300);
      const code = await Promise.race([done, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 20_000))]);
      expect(code, stderr).not.toBe('still running');
      expect(code).not.toBe(0);
      expect(stderr).toContain('portcullis: session ended: the gateway credential of this session was revoked');
    } finally {
      ssh.kill('SIGKILL');
    }
    // the same certificate is refused at once, and says why
    const again = await run('ssh', sshArgs(['echo', 'must-not-run']), { env, timeout: 60_000 }).then((r) => ({ ...r, code: 0 }), (e: { stdout: string; stderr: string; code: number }) => e);
    expect(again.code).not.toBe(0);
    expect(again.stdout).not.toContain('must-not-run');
    expect(again.stderr).toContain('gateway credential has been revoked');
    // and the api mints no new certificate with the revoked token
    expect((await s.rest('POST', '/v1/connections/demo-ssh/ssh-certificate', own, { publicKey: readFileSync(`${key}.pub`, 'utf8').trim() })).status).toBe(401);
  }, 120_000);
});
