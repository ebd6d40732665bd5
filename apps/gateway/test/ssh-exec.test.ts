import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSessionEvents, waitFor } from './support/harness.js';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Client } from 'ssh2';
import { SSH_CIPHERS, SSH_NATIVE_CRYPTO } from '../src/ssh/ssh-listener.js';
import { connectSsh2, startSshWorld, type SshWorld } from './support/ssh-world.js';

/**
 * The SSH path with the real OpenSSH client and a real sshd behind the gateway: exec with the
 * gateway credential as the password, its output, exit status and stdin; the session's events.
 */

let w: SshWorld;

beforeAll(async () => {
  w = await startSshWorld();
}, 60_000);
afterAll(async () => {
  await w?.stop();
});

async function eventsOf(pred: (e: Record<string, unknown>) => boolean): Promise<Record<string, unknown>[]> {
  let found: Record<string, unknown> | undefined;
  await waitFor(async () => {
    found = (await readSessionEvents(w.h, undefined, 1)).find(pred);
    return !!found;
  }, 10_000, 100);
  return readSessionEvents(w.h, String(found!.sessionId), 1);
}

/** How a command ended (listened to in ssh2's callback: the end can come in the same read as the channel). */
function ended(c: Client, command: string): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => c.exec(command, (err, ch) => {
    if (err) return reject(err);
    let code: number | null = null;
    let signal: string | null = null;
    let stderr = '';
    ch.on('exit', (n: number | null, sig?: string) => {
      code = n;
      signal = sig ?? null;
    }).resume();
    ch.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    ch.on('close', () => resolve({ code, signal, stderr }));
  }));
}

describe('ssh exec through the gateway', () => {
  it('runs a command on the target with the credential as the password: output, exit status, stdin', async () => {
    const token = await w.h.credential({ cn: 'box' });
    const r = await w.ssh(token, ['echo', 'hello-from-$(hostname)-$((6*7))']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^hello-from-.+-42\n$/);
    expect(r.code).toBe(0);
    const fail = await w.ssh(token, ['exit 7']);
    expect(fail.code).toBe(7);
    const cat = await w.ssh(token, ['tr a-z A-Z'], { input: 'piped through\n' });
    expect(cat.stdout).toBe('PIPED THROUGH\n');
  });

  it('records the session: start, the command with its decision, the terminal stream, end', async () => {
    const token = await w.h.credential({ cn: 'box', sub: 'user:recorded' });
    const r = await w.ssh(token, ['echo', 'recorded-output']);
    expect(r.code).toBe(0);
    const events = await eventsOf((e) => e.type === 'command' && (e.data as { command?: string }).command === 'echo recorded-output');
    await waitFor(async () => (await readSessionEvents(w.h, String(events[0]!.sessionId), 1)).some((e) => e.type === 'session.end'), 10_000, 100);
    const all = await readSessionEvents(w.h, String(events[0]!.sessionId), 1);
    const types = all.map((e) => e.type);
    expect(types[0]).toBe('session.start');
    expect(types.at(-1)).toBe('session.end');
    expect(all[0]!.identity).toBe('user:recorded');
    const cmd = all.find((e) => e.type === 'command')!.data as Record<string, unknown>;
    expect(cmd).toMatchObject({ source: 'exec', command: 'echo recorded-output', action: 'allow' });
    const term = all.filter((e) => e.type === 'terminal').map((e) => e.data as Record<string, unknown>);
    expect(term[0]).toMatchObject({ event: 'start', command: 'echo recorded-output', t: 0 });
    expect(term.filter((t) => t.event === 'o').map((t) => t.data).join('')).toBe('recorded-output\n');
    expect(term.at(-1)).toMatchObject({ event: 'end' });
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
  });

  // ssh2's native crypto binding (built by pnpm install) carries the client's leg: each cipher the gateway
  // offers, as OpenSSH's only choice, moves a few hundred KiB each way intact (many packets, both directions)
  it.each(['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr', 'aes256-ctr'])('cipher %s: the client leg carries data both ways intact', async (cipher) => {
    const token = await w.h.credential({ cn: 'box' });
    const payload = `${randomBytes(300 * 1024).toString('base64')}\n`;
    const r = await w.ssh(token, ['cat'], { input: payload, options: ['-c', cipher] });
    if (!SSH_CIPHERS.includes(cipher)) {
      // chacha20-poly1305 only with the native binding (ssh2's own Poly1305 is JavaScript)
      expect(cipher).toBe('chacha20-poly1305@openssh.com');
      expect(SSH_NATIVE_CRYPTO).toBe(false);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/no matching cipher/);
      return;
    }
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(payload.length);
    expect(r.stdout === payload).toBe(true);
  });

  // a command that exits at once can have its exit-status in the same read as the channel's confirmation:
  // the gateway keeps it from the moment the channel opens (it once arrived before the gateway listened,
  // and the client got the output without a status)
  it('a command that exits at once still reports its exit status, one after another and many at a time', async () => {
    const c = await connectSsh2(w, await w.h.credential({ cn: 'box' }));
    const status = (cmd: string) => new Promise<number | null>((resolve, reject) => c.exec(cmd, (err, ch) => {
      if (err) return reject(err);
      let code: number | null = null;
      ch.on('exit', (n: number | null) => (code = n)).resume();
      ch.stderr.resume();
      ch.on('close', () => resolve(code));
    }));
    try {
      for (let i = 0; i < 20; i++) expect(await status(`exit ${i % 4}`)).toBe(i % 4);
      expect(await Promise.all(Array.from({ length: 12 }, (_, i) => status(`exit ${10 + i}`)))).toEqual(Array.from({ length: 12 }, (_, i) => 10 + i));
    } finally {
      c.end();
    }
  });

  // every path an exit status takes to the client, with the OpenSSH programs
  it('exit statuses through every path: exec with a terminal, an interactive shell, a signal, scp -O of a missing file, an sftp session', async () => {
    const token = await w.h.credential({ cn: 'box' });
    expect((await w.ssh(token, ['-tt', 'exit 3'])).code).toBe(3);
    expect((await w.ssh(token, ['-tt'], { input: 'exit 4\n' })).code).toBe(4);
    // no terminal: the shell reads its commands from stdin
    expect((await w.ssh(token, ['-T'], { input: 'exit 5\n' })).code).toBe(5);
    // killed by a signal: the OpenSSH client exits 255 (the signal itself: the next test)
    expect((await w.ssh(token, ['kill -TERM $$'])).code).toBe(255);
    const missing = join(w.sshd.dir, `missing-${randomBytes(3).toString('hex')}`);
    const scp = await w.run('scp', token, ['-O', `box@127.0.0.1:${missing}`, join(w.sshd.dir, 'nowhere')]);
    expect(scp.code).not.toBe(0);
    expect(scp.stderr).toContain(`${missing}: No such file or directory`);
    const sftp = await w.run('sftp', token, ['box@127.0.0.1'], { input: 'pwd\n' });
    expect(sftp.code).toBe(0);
    expect(sftp.stdout).toContain('Remote working directory');
    // the gateway is still there
    expect((await w.ssh(token, ['exit 6'])).code).toBe(6);
  });

  // the client's EOF came while the gateway opened the target's sftp subsystem, with the channel already
  // flowing and nobody to pass it on: the target's sftp-server never saw it, and the channel never ended
  it('sftp: a client that ends its input at once gets the subsystem\'s end and exit status', async () => {
    const c = await connectSsh2(w, await w.h.credential({ cn: 'box' }));
    try {
      const end = () => new Promise<number | null>((resolve, reject) => c.subsys('sftp', (err, ch) => {
        if (err) return reject(err);
        let code: number | null = null;
        ch.on('exit', (n: number | null) => (code = n)).resume();
        ch.on('close', () => resolve(code));
        ch.end();
      }));
      for (let i = 0; i < 5; i++) expect(await end()).toBe(0);
    } finally {
      c.end();
    }
  });

  // OpenSSH's sshd names only the signals of RFC 4254; any other arrives as "SIG@openssh.com", which ssh2 cannot
  // send on: relaying it threw in the channel's close handler, outside any try (the gateway process died)
  it('a command killed by a signal: the signal is relayed; one the protocol does not name (SIGBUS, SIGXCPU) is said on stderr; the gateway lives on', async () => {
    const token = await w.h.credential({ cn: 'box' });
    const c = await connectSsh2(w, token);
    try {
      expect(await ended(c, 'kill -TERM $$')).toEqual({ code: null, signal: 'SIGTERM', stderr: '' });
      for (const sig of ['BUS', 'XCPU']) {
        expect({ sig, ...(await ended(c, `kill -${sig} $$`)) }).toEqual({ sig, code: null, signal: null, stderr: 'portcullis: the command was killed by a signal\n' });
      }
      expect(await ended(c, 'exit 2')).toEqual({ code: 2, signal: null, stderr: '' });
    } finally {
      c.end();
    }
    const r = await w.ssh(token, ['kill -BUS $$']);
    expect(r.code).toBe(255);
    expect(r.stderr).toContain('portcullis: the command was killed by a signal');
    expect((await w.ssh(token, ['echo', 'alive'])).stdout).toBe('alive\n');
  });

  it('offers chacha20-poly1305 exactly when ssh2 runs with its native crypto binding (CI builds it)', () => {
    expect(SSH_CIPHERS.includes('chacha20-poly1305@openssh.com')).toBe(SSH_NATIVE_CRYPTO);
    if (process.env.CI === 'true') expect(SSH_NATIVE_CRYPTO).toBe(true);
  });
});
