import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/support/free-port.js';
import { readSessionEvents, waitFor } from './support/harness.js';
import { spawnProgram, startSshWorld, type SshWorld } from './support/ssh-world.js';

/**
 * The policy's `ssh` settings with OpenSSH and a real sshd: environment variables (`SetEnv`/`SendEnv`)
 * pass only where `ssh.env.allow` names them — a glob never lets through a variable that changes what
 * runs (LD_PRELOAD, BASH_ENV, PATH…) — and port forwarding reaches only the destinations
 * `ssh.forwarding` names, opened by the target; every refusal says why and every forward is recorded.
 */

let w: SshWorld;
let echo: Server;
let echoPort: number;
let remotePort: number;

/** A TCP echo server beside the target (the target is on 127.0.0.1 too). */
function echoServer(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer((s: Socket) => s.pipe(s));
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

beforeAll(async () => {
  ({ server: echo, port: echoPort } = await echoServer());
  remotePort = await freePort();
  const policy = {
    name: 'ssh-settings',
    guardrails: [],
    ssh: {
      env: { allow: ['PORTCULLIS_*', '*_OK', 'LANG'] },
      forwarding: { local: [`127.0.0.1:${echoPort}`, `localhost:${echoPort}`], remote: [`127.0.0.1:${remotePort}`] },
    },
  };
  w = await startSshWorld({ policies: [{ name: policy.name, version: 1, document: policy }], connection: { policy: policy.name } });
}, 60_000);
afterAll(async () => {
  await w?.stop();
  echo?.close();
});

const token = (sub = 'user:fwd') => w.h.credential({ cn: 'box', sub });

/** Sends `text` on a TCP connection and resolves with what came back once as long as it. */
function roundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(text));
    let got = '';
    s.on('data', (b: Buffer) => {
      got += b.toString();
      if (got.length >= text.length) {
        s.end();
        resolve(got);
      }
    });
    s.on('error', reject);
  });
}

async function eventsOf(sub: string, type: string, want: number): Promise<Record<string, unknown>[]> {
  let found: Record<string, unknown>[] = [];
  await waitFor(async () => {
    const all = await readSessionEvents(w.h, undefined, 1);
    const sessions = new Set(all.filter((e) => e.type === 'session.start' && (e.data as { subject?: string }).subject === sub).map((e) => e.sessionId));
    found = all.filter((e) => e.type === type && sessions.has(e.sessionId)).map((e) => e.data as Record<string, unknown>);
    return found.length >= want;
  }, 20_000, 100);
  return found;
}

describe('environment variables (ssh.env.allow)', () => {
  it('named and globbed variables pass; others are refused with the reason; a glob never passes LD_PRELOAD, BASH_ENV or PATH', async () => {
    const r = await w.ssh(await token(), ['echo "[$PORTCULLIS_A][$PORTCULLIS_B][$LD_PRELOAD][$BASH_ENV][$OTHER]"'], {
      options: ['-o', 'SetEnv=PORTCULLIS_A=one PORTCULLIS_B=two LD_PRELOAD=/tmp/evil.so BASH_ENV=/tmp/evil.sh OTHER=x PATH_OK=/tmp'],
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('[one][two][][][]\n');
    expect(r.stderr).toContain('portcullis: environment variable LD_PRELOAD is not allowed by the policy (ssh.env.allow)');
    expect(r.stderr).toContain('portcullis: environment variable BASH_ENV is not allowed by the policy (ssh.env.allow)');
    expect(r.stderr).toContain('portcullis: environment variable OTHER is not allowed by the policy (ssh.env.allow)');
    // `*_OK` is a glob: PATH_OK is not PATH, so it passes the gateway (the target's AcceptEnv then drops it)
    expect(r.stderr).not.toContain('PATH_OK');
  });

  it('SendEnv from the client environment goes the same way, in an interactive-less shell too', async () => {
    const r = await w.ssh(await token(), ['-o', 'SendEnv=PORTCULLIS_* LD_*', 'echo "[$PORTCULLIS_SENT][$LD_LIBRARY_PATH]"'], {
      env: { PORTCULLIS_SENT: 'sent', LD_LIBRARY_PATH: '/tmp/evil' },
    });
    expect(r.stdout).toBe('[sent][]\n');
    expect(r.stderr).toContain('portcullis: environment variable LD_LIBRARY_PATH is not allowed by the policy (ssh.env.allow)');
  });
});

describe('port forwarding (ssh.forwarding)', () => {
  it('ssh -L to an allowed destination: the target connects, bytes flow both ways and the forward is recorded with its bytes', async () => {
    const sub = 'user:fwd-local';
    const local = await freePort();
    const ssh = spawnProgram('sshpass', ['-e', 'ssh', ...w.clientOptions(['-o', 'ExitOnForwardFailure=yes']), '-p', String(w.port()), '-N', '-L', `127.0.0.1:${local}:localhost:${echoPort}`, 'box@127.0.0.1'], { SSHPASS: await token(sub) });
    try {
      let reply = '';
      await waitFor(async () => {
        reply = await roundTrip(local, 'ping through the target\n').catch(() => '');
        return reply !== '';
      }, 20_000, 200);
      expect(reply).toBe('ping through the target\n');
      expect(await roundTrip(local, 'x'.repeat(100_000))).toBe('x'.repeat(100_000));
    } finally {
      ssh.kill();
    }
    const events = await eventsOf(sub, 'forward', 4);
    const decided = events.filter((e) => e.action !== undefined);
    expect(decided[0]).toMatchObject({ direction: 'local', destination: `localhost:${echoPort}`, action: 'allow', rule: 'ssh.forwarding.local[1]' });
    const ends = events.filter((e) => e.event === 'end');
    expect(ends.map((e) => e.bytesToTarget).sort()).toEqual([100_000, 'ping through the target\n'.length].sort());
    expect(ends.map((e) => e.bytesFromTarget).sort()).toEqual([100_000, 'ping through the target\n'.length].sort());
  });

  it('a destination the policy does not name is refused with the reason, however it is spelt', async () => {
    for (const dest of [`127.0.0.1:${w.sshd.port}`, `127.1:${echoPort}`, `2130706433:${echoPort}`, `127.0.0.1.nip.io:${echoPort}`, `LOCALHOST.:${w.sshd.port}`]) {
      const r = await w.ssh(await token(), ['-W', dest], { input: '' });
      expect(r.code, dest).toBe(255);
      expect(r.stderr, dest).toMatch(/open failed: administratively prohibited: portcullis: port forwarding to .* is (not allowed by the policy|refused: the host is neither)/);
    }
  });

  it('ssh -R on an allowed address: the target listens and its connections come back to the client; another address is refused with the reason', async () => {
    const sub = 'user:fwd-remote';
    const ssh = spawnProgram('sshpass', ['-e', 'ssh', ...w.clientOptions(['-o', 'ExitOnForwardFailure=yes']), '-p', String(w.port()), '-N', '-R', `127.0.0.1:${remotePort}:127.0.0.1:${echoPort}`, 'box@127.0.0.1'], { SSHPASS: await token(sub) });
    try {
      let reply = '';
      await waitFor(async () => {
        reply = await roundTrip(remotePort, 'back from the target\n').catch(() => '');
        return reply !== '';
      }, 20_000, 200);
      expect(reply).toBe('back from the target\n');
    } finally {
      ssh.kill();
    }
    const events = await eventsOf(sub, 'forward', 2);
    expect(events[0]).toMatchObject({ direction: 'remote', destination: `127.0.0.1:${remotePort}`, action: 'allow', rule: 'ssh.forwarding.remote[0]' });
    const other = await freePort();
    const refused = await w.ssh(await token(), ['-R', `127.0.0.1:${other}:127.0.0.1:${echoPort}`, 'echo', 'ran']);
    expect(refused.stdout).toBe('ran\n');
    expect(refused.stderr).toContain(`portcullis: remote forwarding on 127.0.0.1:${other} is not allowed by the policy (ssh.forwarding.remote)`);
    expect(refused.stderr).toMatch(/remote port forwarding failed/);
  });
});
