import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ed25519FromOpenSshPrivateKey, generateSshEd25519, parseSshPublicKeyLine, signSshCertificate } from '@portcullis/protocol';
import type { Gateway } from '../src/gateway.js';
import { waitFor } from './support/harness.js';
import { runProgram } from './support/run-program.js';
import { startSshWorld, withoutKnownHostNotes, type SshWorld } from './support/ssh-world.js';

/**
 * Who gets in, and what everybody else sees: the credential as password, keyboard-interactive or
 * the key id of a user certificate; wrong credentials, unknown connections, a wrong target host key,
 * a revoked credential mid-session, garbage and clients that never finish — each with a clear
 * message or a closed connection, while other sessions go on.
 */

let w: SshWorld;
let tmp: string;

beforeAll(async () => {
  w = await startSshWorld();
  tmp = mkdtempSync(join(tmpdir(), 'ssh-auth-'));
  // the same target pinned to another host key: the gateway must refuse it
  const other = generateSshEd25519('not-the-target');
  await w.h.putSnapshot({ connections: [...w.h.snapshotInput.connections, { ...w.connection, name: 'box-wrongkey', ssh: { hostKeys: [other.publicKey] } }] });
}, 60_000);
afterAll(async () => {
  await w?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const token = (claims: Record<string, unknown> = {}) => w.h.credential({ cn: 'box', ...claims });

describe('ssh authentication', () => {
  it('a wrong password is refused with the reason, printed by the OpenSSH client', async () => {
    const r = await w.ssh('not-a-credential', ['echo', 'never']);
    expect(r.code).toBe(255);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('portcullis: credential refused: invalid gateway credential');
    expect(r.stderr).toMatch(/Permission denied/);
  });

  it('an unknown connection and a credential for another connection are refused by name', async () => {
    const unknown = await w.ssh(await w.h.credential({ cn: 'nowhere' }), ['true'], { user: 'nowhere' });
    expect(unknown.code).toBe(255);
    expect(unknown.stderr).toContain('connection "nowhere" does not exist');
    const other = await w.ssh(await token(), ['true'], { user: 'target' });
    expect(other.code).toBe(255);
    expect(other.stderr).toContain('gateway credential is for another connection');
  });

  it('keyboard-interactive takes the credential at its prompt', async () => {
    const r = await quietRun('sshpass', ['-e', '-P', 'Password (gateway credential):', 'ssh', ...w.clientOptions(['-o', 'PreferredAuthentications=keyboard-interactive']), '-p', String(w.port()), 'box@127.0.0.1', 'echo', 'kbd-ok'], { env: { SSHPASS: await token() } });
    expect({ code: r.code, out: r.stdout }).toEqual({ code: 0, out: 'kbd-ok\n' });
    // the prompt's title and instruction say where the credential comes from
    expect(r.stderr).toContain('Connection "box": paste the credential from POST /v1/connections/box/credentials');
  });

  it('an OpenSSH user certificate of the pool CA whose key id is a credential logs in; other certificates are refused', async () => {
    const key = generateSshEd25519('carol');
    writeFileSync(join(tmp, 'id'), key.privateKey, { mode: 0o600 });
    const caKey = ed25519FromOpenSshPrivateKey(w.caPrivateKey);
    const sign = (keyId: string, principals: string[], ca = caKey) =>
      signSshCertificate({ publicKey: parseSshPublicKeyLine(key.publicKey), caKey: ca, keyId, principals, validAfter: new Date(Date.now() - 60_000), validBefore: new Date(Date.now() + 600_000), extensions: ['permit-pty'] });
    const withCert = async (cert: string) => {
      writeFileSync(join(tmp, 'id-cert.pub'), `${cert}\n`);
      return quietRun('ssh', [
        '-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
        '-o', 'IdentitiesOnly=yes', '-o', 'PreferredAuthentications=publickey', '-i', join(tmp, 'id'), '-o', `CertificateFile=${join(tmp, 'id-cert.pub')}`,
        '-p', String(w.port()), 'box@127.0.0.1', 'echo', 'cert-ok',
      ]);
    };
    const ok = await withCert(sign(await token({ sub: 'user:cert' }), ['box']));
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toBe('cert-ok\n');
    const otherCa = ed25519FromOpenSshPrivateKey(generateSshEd25519().privateKey);
    const forged = await withCert(sign(await token(), ['box'], otherCa));
    expect(forged.code).toBe(255);
    expect(forged.stderr).toContain("not signed by this gateway pool's user CA");
    const wrongPrincipal = await withCert(sign(await token(), ['elsewhere']));
    expect(wrongPrincipal.stderr).toContain('not valid for connection "box"');
    const badKeyId = await withCert(sign('not-a-token', ['box']));
    expect(badKeyId.stderr).toContain('certificate refused: invalid gateway credential');
  });

  it('the target must present its pinned host key: another key is refused before any credential is sent', async () => {
    const r = await w.ssh(await token({ cn: 'box-wrongkey' }), ['echo', 'never'], { user: 'box-wrongkey' });
    expect(r.code).toBe(255);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('host key of connection "box-wrongkey"\'s target does not match the pinned key');
  });

  it('port forwarding without a policy allowing it, agent and X11 forwarding are refused with a reason', async () => {
    const fwd = await w.ssh(await token(), ['-W', `127.0.0.1:${w.sshd.port}`], { input: '' });
    expect(fwd.code).toBe(255);
    expect(fwd.stderr).toMatch(/open failed|administratively prohibited/);
    const x = await w.ssh(await token(), ['-X', 'echo', 'x-ok'], { env: { DISPLAY: '127.0.0.1:77' } });
    expect(x.stdout).toBe('x-ok\n');
    expect(x.stderr).toContain('portcullis: X11 forwarding is refused by the gateway');
    // ssh -A with a real agent: the command runs, no agent socket on the target, and the reason is said
    const agentSock = join(tmp, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
    try {
      await waitFor(() => existsSync(agentSock), 10_000);
      const a = await w.ssh(await token(), ['-A', 'echo "agent:[$SSH_AUTH_SOCK]"'], { env: { SSH_AUTH_SOCK: agentSock } });
      expect(a.stdout).toBe('agent:[]\n');
      expect(a.stderr).toContain('portcullis: agent forwarding is refused by the gateway');
    } finally {
      agent.kill();
    }
  });

  it('revoking the credential ends its live session with the reason; a session of another credential goes on', async () => {
    const jti = randomUUID();
    const revoked = spawnSsh(await token({ jti }), 'echo started; sleep 30; echo never');
    const kept = spawnSsh(await token(), 'echo started; sleep 3; echo kept-alive');
    await revoked.saw('started');
    await kept.saw('started');
    await w.h.putSnapshot({ revokedTokenIds: [jti] });
    const r = await revoked.done;
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain('never');
    expect(r.stderr).toContain('portcullis: session ended: the gateway credential of this session was revoked');
    const k = await kept.done;
    expect(k.stdout).toBe('started\nkept-alive\n');
    expect(k.code).toBe(0);
    const again = await w.ssh(await token({ jti }), ['true']);
    expect(again.stderr).toContain('gateway credential has been revoked');
    await w.h.putSnapshot({ revokedTokenIds: [] });
  });
});

describe('bad input on the SSH port', () => {
  let strict: Gateway;
  beforeAll(async () => {
    strict = await w.h.startGateway({ GATEWAY_SSH_LOGIN_GRACE_MS: '4000', GATEWAY_SSH_MAX_AUTH_FAILURES: '3' });
  });

  it('garbage and a client that never finishes the handshake are closed; a session in progress goes on', async () => {
    const busy = spawnSsh(await token(), 'echo started; sleep 2; echo still-here', strict.sshPort);
    await busy.saw('started');
    const garbage = await rawExchange(strict.sshPort, randomBytes(4096));
    expect(garbage.closed).toBe(true);
    const http = await rawExchange(strict.sshPort, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(http.closed).toBe(true);
    expect(http.received).toMatch(/^SSH-2\.0-Portcullis\r\n/);
    // a version line, then silence: closed at the login grace time
    const silent = await rawExchange(strict.sshPort, Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'));
    expect(silent.closed).toBe(true);
    const r = await busy.done;
    expect(r.stdout).toBe('started\nstill-here\n');
  });

  it('wrong passwords are rate limited per source address: after the limit even the right one waits', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await w.ssh('wrong', ['true'], { port: strict.sshPort });
      expect(r.stderr).toContain('credential refused');
    }
    const limited = await w.ssh(await token(), ['echo', 'never'], { port: strict.sshPort });
    expect(limited.code).toBe(255);
    expect(limited.stderr).toMatch(/portcullis: too many failed logins from this address; try again in \d+ s/);
    // the first gateway keeps its own count: this address is fine there
    const elsewhere = await w.ssh(await token(), ['echo', 'fine'], {});
    expect(elsewhere.stdout).toBe('fine\n');
  });
});

async function quietRun(cmd: string, args: string[], opts: Parameters<typeof runProgram>[2] = {}) {
  const r = await runProgram(cmd, args, opts);
  return { ...r, stderr: withoutKnownHostNotes(r.stderr) };
}

/** Writes `bytes` to the port and reads until the server closes (or 20 s). */
function rawExchange(port: number, bytes: Buffer): Promise<{ closed: boolean; received: string }> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ closed: false, received });
    }, 20_000);
    s.on('data', (b) => (received += b.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ closed: true, received });
    });
    s.write(bytes);
  });
}

function spawnSsh(tok: string, command: string, port = w.port()): { saw(text: string): Promise<void>; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const p = spawn('sshpass', ['-e', 'ssh', ...w.clientOptions(), '-p', String(port), 'box@127.0.0.1', command], { env: { PATH: process.env.PATH, SSHPASS: tok }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  p.stderr.on('data', (b: Buffer) => (stderr = withoutKnownHostNotes(stderr + b.toString())));
  const timer = setTimeout(() => p.kill('SIGKILL'), 40_000);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
  return {
    done,
    saw: async (text) => {
      const end = Date.now() + 20_000;
      while (!stdout.includes(text)) {
        if (Date.now() > end || p.exitCode !== null) throw new Error(`never saw ${text}: ${stdout} ${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}
