import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, type ClientChannel } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApprovalsStack, type ApprovalsStack } from '../../../test/support/approvals-stack.js';
import { readSessionEvents, waitFor } from './support/harness.js';
import { markerPolicy } from './support/ssh-test-policy.js';
import { attachSshTarget, spawnProgram, type SshWorld } from './support/ssh-world.js';

/**
 * What the gateway does with SSH decisions, end to end with OpenSSH clients, a real sshd and the
 * approvals loop (api, approvals app, Redis, NATS): exec blocked before it reaches the host, held
 * for approval then run or refused, in one SSH connection; an interactive shell (tmux gives the pty)
 * whose blocked line is cleared on the host and whose approved line runs, the shell going on; SFTP,
 * scp and scp -O decided per file; output masked as a stream; environment variables filtered. The
 * decisions come from a marker policy (support/ssh-test-policy.ts): the classifier is not under test.
 */

let s: ApprovalsStack;
let w: SshWorld;
let files: string;
const sub = `carol-ssh-${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  s = await startApprovalsStack({ timeoutSeconds: 30, harness: { sshPolicy: () => markerPolicy() } });
  const policy = s.h.snapshotInput.policies[0]!.name;
  w = await attachSshTarget(s.h, { name: s.connection, policy });
  files = join(w.sshd.dir, 'files');
  mkdirSync(join(files, 'locked'), { recursive: true });
}, 120_000);
afterAll(async () => {
  await w?.stop();
  await s?.stop();
});

const token = () => s.credential({ sub });

/** One SSH connection (the ssh2 client library): several execs in the same gateway session. */
async function connection(): Promise<Client> {
  const c = new Client();
  await new Promise<void>((resolve, reject) => {
    c.once('ready', () => resolve()).once('error', reject);
    void token().then((password) => c.connect({ host: '127.0.0.1', port: w.port(), username: s.connection, password, readyTimeout: 20_000 }));
  });
  return c;
}

function exec(c: Client, command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    c.exec(command, (err, ch) => {
      if (err) return reject(err);
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      ch.on('data', (b: Buffer) => (stdout += b.toString()));
      ch.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      ch.on('exit', (n: number | null) => (code = n));
      ch.on('close', () => resolve({ code, stdout, stderr }));
    });
  });
}

describe('exec', () => {
  it('allowed, blocked and held-then-approved commands in one SSH session; the blocked one never reaches the host', async () => {
    const c = await connection();
    try {
      expect(await exec(c, 'echo allowed-$((40+2))')).toEqual({ code: 0, stdout: 'allowed-42\n', stderr: '' });
      const blocked = await exec(c, `touch ${files}/BLOCKME`);
      expect(blocked).toEqual({ code: 1, stdout: '', stderr: 'portcullis: refused by rule no-blockme: blockme is off limits\n' });
      expect(existsSync(join(files, 'BLOCKME'))).toBe(false);
      const held = exec(c, `echo HOLDME > ${files}/held && cat ${files}/held`);
      const [pending] = await s.waitPending(sub);
      expect(existsSync(join(files, 'held'))).toBe(false);
      expect((await s.decide(pending!.id, 'approve', 'go ahead')).status).toBe(200);
      const ran = await held;
      expect(ran.code).toBe(0);
      expect(ran.stdout).toBe('HOLDME\n');
      expect(ran.stderr).toMatch(new RegExp(`^portcullis: waiting for approval ${pending!.id} \\(hold: needs a second pair of eyes\\)… approve with POST /v1/approvals/${pending!.id}/approve\\n$`));
      // the session goes on after all three
      expect((await exec(c, 'echo after')).stdout).toBe('after\n');
    } finally {
      c.end();
    }
  });

  it('a denied command is not run and says who denied it (OpenSSH client)', async () => {
    const run = w.spawnSsh(await token(), [`touch ${files}/HOLDME-denied`]);
    const [pending] = await s.waitPending(sub);
    await run.saw(`waiting for approval ${pending!.id}`, 'stderr');
    expect((await s.decide(pending!.id, 'deny', 'not today')).status).toBe(200);
    const r = await run.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`portcullis: approval ${pending!.id} denied by .+: not today; not run`));
    expect(existsSync(join(files, 'HOLDME-denied'))).toBe(false);
  });

  // ssh2 emits a paused channel's 'close' only once its input has been read: the gateway, holding it for the
  // decision, never saw the client go — the approval stayed pending, and once approved the command ran
  it('a held command whose client closes its channel is withdrawn: its approval is cancelled, it never runs; again and again on one connection', async () => {
    const c = await connection();
    try {
      for (let i = 0; i < 3; i++) {
        const marker = join(files, `HOLDME-gone-${randomBytes(3).toString('hex')}`);
        let close = (): void => undefined;
        const closed = new Promise<void>((resolve, reject) => c.exec(`touch ${marker}`, (err, ch) => {
          if (err) return reject(err);
          ch.resume();
          ch.stderr.resume();
          ch.on('close', () => resolve());
          close = () => ch.close();
        }));
        const [pending] = await s.waitPending(sub);
        // the client gives up waiting
        close();
        await closed;
        await expect.poll(async () => (await s.prisma.approval.findUniqueOrThrow({ where: { id: pending!.id } })).status, { timeout: 10_000, interval: 100 }).toBe('cancelled');
        expect((await s.decide(pending!.id, 'approve')).status).not.toBe(200);
        expect(existsSync(marker)).toBe(false);
      }
      expect(await s.pendingFor(sub)).toEqual([]);
      // the connection goes on
      expect(await exec(c, 'echo after')).toEqual({ code: 0, stdout: 'after\n', stderr: '' });
    } finally {
      c.end();
    }
  });

  it('a held command that exits at once once approved reports its exit status', async () => {
    const c = await connection();
    try {
      const held = exec(c, 'exit 7 # HOLDME');
      const [pending] = await s.waitPending(sub);
      expect((await s.decide(pending!.id, 'approve')).status).toBe(200);
      expect((await held).code).toBe(7);
    } finally {
      c.end();
    }
  });

  // a shell line waits for its approval in the relay: the approval request carries the channel's signal
  it('a shell line waiting for approval whose client closes the channel is withdrawn: its approval is cancelled, the line never runs', async () => {
    const c = await connection();
    try {
      const marker = join(files, `HOLDME-line-${randomBytes(3).toString('hex')}`);
      const ch = await new Promise<ClientChannel>((resolve, reject) => c.shell({ term: 'dumb', rows: 24, cols: 200, width: 0, height: 0 }, (err, st) => (err ? reject(err) : resolve(st))));
      ch.resume();
      ch.stderr.resume();
      const closed = new Promise((r) => ch.once('close', r));
      ch.write(`touch ${marker}\r`);
      const [pending] = await s.waitPending(sub);
      ch.close();
      await closed;
      await expect.poll(async () => (await s.prisma.approval.findUniqueOrThrow({ where: { id: pending!.id } })).status, { timeout: 10_000, interval: 100 }).toBe('cancelled');
      expect(existsSync(marker)).toBe(false);
      expect(await exec(c, 'echo after')).toEqual({ code: 0, stdout: 'after\n', stderr: '' });
    } finally {
      c.end();
    }
  });

  it('output is masked as a stream, a value split across writes included, in what the client gets and in the recording', async () => {
    const r = await w.ssh(await token(), ["printf 'card SECRET-12'; sleep 0.3; printf '3456 and SECRET-654321\\n'"]);
    expect(r.stdout).toBe('card [masked] and [masked]\n');
    expect(r.stdout).not.toContain('123456');
    let out = '';
    await waitFor(async () => {
      const events = await readSessionEvents(s.h, undefined, 1);
      out = events.filter((e) => e.type === 'terminal' && (e.data as { event: string }).event === 'o').map((e) => (e.data as { data: string }).data).join('');
      return out.includes('card [masked] and [masked]');
    }, 10_000, 100);
    expect(out).not.toMatch(/SECRET-\d/);
  });

  it('environment variables pass only where the policy allows', async () => {
    const r = await w.ssh(await token(), ['echo "[$PORTCULLIS_OK][$PORTCULLIS_NO]"'], { options: ['-o', 'SetEnv=PORTCULLIS_OK=yes PORTCULLIS_NO=no'] });
    expect(r.stdout).toBe('[yes][]\n');
  });
});

describe('interactive shell (tmux)', () => {
  const sock = `portcullis-ssh-${randomBytes(3).toString('hex')}`;
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', sock, ...args], { encoding: 'utf8' });
  const pane = () => tmux('capture-pane', '-p', '-t', 'shell', '-S', '-100');
  const until = async (pred: (p: string) => boolean, what: string) => {
    const end = Date.now() + 20_000;
    for (;;) {
      const p = pane();
      if (pred(p)) return p;
      if (Date.now() > end) throw new Error(`pane never showed ${what}:\n${p}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  afterAll(() => {
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
  });

  it('a blocked line is cleared on the host with the reason shown; an approved line runs; the shell goes on', async () => {
    const args = ['sshpass', '-e', 'ssh', '-tt', ...w.clientOptions(), '-p', String(w.port()), `${s.connection}@127.0.0.1`];
    tmux('new-session', '-d', '-s', 'shell', '-x', '160', '-y', '50', '-e', `SSHPASS=${await token()}`, '-e', 'PS1=$ ', ...args);
    tmux('send-keys', '-t', 'shell', `export PS1='prompt> '; cd ${files}`, 'Enter');
    await until((p) => /^prompt>\s*$/m.test(p), 'the prompt');
    tmux('send-keys', '-t', 'shell', 'echo one-$((1+1))', 'Enter');
    await until((p) => p.includes('one-2'), 'the first command');
    tmux('send-keys', '-t', 'shell', 'touch BLOCKME-shell', 'Enter');
    await until((p) => p.includes('portcullis: refused by rule no-blockme: blockme is off limits'), 'the refusal');
    expect(existsSync(join(files, 'BLOCKME-shell'))).toBe(false);
    tmux('send-keys', '-t', 'shell', 'echo HOLDME > approved-line', 'Enter');
    const [pending] = await s.waitPending(sub);
    await until((p) => p.includes(`waiting for approval ${pending!.id}`), 'the approval notice');
    expect(existsSync(join(files, 'approved-line'))).toBe(false);
    expect((await s.decide(pending!.id, 'approve')).status).toBe(200);
    // bash's `>` makes the file before echo writes to it: wait for a whole line, not for the file
    await waitFor(() => existsSync(join(files, 'approved-line')) && readFileSync(join(files, 'approved-line'), 'utf8').endsWith('\n'), 20_000, 50);
    expect(readFileSync(join(files, 'approved-line'), 'utf8')).toBe('HOLDME\n');
    tmux('send-keys', '-t', 'shell', 'echo still-$((2+3))', 'Enter');
    await until((p) => p.includes('still-5'), 'the shell going on');
    tmux('send-keys', '-t', 'shell', 'exit', 'Enter');
    const events = await readSessionEvents(s.h, undefined, 1);
    const lines = events.filter((e) => e.type === 'command' && (e.data as { source: string }).source === 'shell').map((e) => e.data as Record<string, unknown>);
    expect(lines.find((l) => l.command === 'touch BLOCKME-shell')).toMatchObject({ action: 'block', rule: 'no-blockme', reliable: true });
    expect(lines.find((l) => l.command === 'echo HOLDME > approved-line')).toMatchObject({ action: 'require_approval', approvalId: pending!.id, approved: true });
    expect(lines.find((l) => l.command === 'echo still-$((2+3))')).toMatchObject({ action: 'allow' });
  });
});

describe('file transfers decided by path', () => {
  const local = () => {
    const p = join(w.sshd.dir, `local-${randomBytes(3).toString('hex')}`);
    writeFileSync(p, 'payload\n');
    return p;
  };

  it('sftp: an upload under locked/ is refused with the reason; elsewhere it is written; a .pem download is refused', async () => {
    writeFileSync(join(files, 'key.pem'), 'not for you\n');
    const src = local();
    // commands on stdin (sftp -b would turn password logins off)
    const r = await w.run('sftp', await token(), [`${s.connection}@127.0.0.1`], {
      input: `-put ${src} ${files}/locked/up.txt\nput ${src} ${files}/ok.txt\n-get ${files}/key.pem ${w.sshd.dir}/stolen.pem\n-rename ${files}/ok.txt ${files}/locked/moved\n`,
    });
    // OpenSSH's sftp prints the status code; the reason travels in the STATUS message (below)
    expect(r.stderr).toContain(`dest open "${files}/locked/up.txt": Permission denied`);
    expect(r.stderr).toContain(`remote open "${files}/key.pem": Permission denied`);
    expect(r.stderr).toContain(`remote rename "${files}/ok.txt" to "${files}/locked/moved": Permission denied`);
    expect(existsSync(join(files, 'locked/up.txt'))).toBe(false);
    expect(existsSync(join(w.sshd.dir, 'stolen.pem'))).toBe(false);
    expect(readFileSync(join(files, 'ok.txt'), 'utf8')).toBe('payload\n');
    // the session's events are published in batches after the fact: wait for the file events
    const fileOps = async () => (await readSessionEvents(s.h, undefined, 1)).filter((e) => e.type === 'file').map((e) => e.data as Record<string, unknown>);
    await expect.poll(fileOps, { timeout: 15_000, interval: 200 }).toEqual(expect.arrayContaining([
      expect.objectContaining({ via: 'sftp', op: 'write', path: `${files}/locked/up.txt`, action: 'block', rule: 'no-locked-writes' }),
      expect.objectContaining({ via: 'sftp', op: 'write', path: `${files}/ok.txt`, action: 'allow' }),
    ]));
  });

  it('the refusal carries the reason in its STATUS message; relative paths and .. are resolved before the decision', async () => {
    const c = await connection();
    try {
      const sftp = await new Promise<import('ssh2').SFTPWrapper>((resolve, reject) => c.sftp((err, x) => (err ? reject(err) : resolve(x))));
      const attempt = (path: string) => new Promise<Error | null>((resolve) => sftp.open(path, 'w', (err) => resolve(err ?? null)));
      const direct = await attempt(`${files}/locked/x`);
      expect(direct?.message).toBe(`write ${files}/locked/x: nothing is written under locked/`);
      const depth = files.split('/').length;
      const sneaky = await attempt(`${'../'.repeat(depth + 2)}${files.slice(1)}/locked/../locked/./sneaky`);
      expect(sneaky?.message).toBe(`write ${files}/locked/sneaky: nothing is written under locked/`);
      const nul = await attempt(`${files}/ok.pem\0.txt`);
      expect(nul?.message).toContain('a path with a NUL byte is refused');
      expect(existsSync(join(files, 'locked/sneaky'))).toBe(false);
    } finally {
      c.end();
    }
  });

  it('scp (SFTP) and scp -O (legacy): refused under locked/, written elsewhere', async () => {
    const src = local();
    const viaSftp = await w.run('scp', await token(), [src, `${s.connection}@127.0.0.1:${files}/locked/a`]);
    expect(viaSftp.code).not.toBe(0);
    // scp over SFTP prints only the status code (the reason is in the STATUS message, which sftp shows)
    expect(viaSftp.stderr).toMatch(/dest open .*locked\/a.*Permission denied/);
    const legacy = await w.run('scp', await token(), ['-O', src, `${s.connection}@127.0.0.1:${files}/locked/b`]);
    expect(legacy.code).not.toBe(0);
    expect(legacy.stderr).toContain('nothing is written under locked/');
    const legacyDir = await w.run('scp', await token(), ['-O', src, `${s.connection}@127.0.0.1:${files}/locked`]);
    expect(legacyDir.code).not.toBe(0);
    expect(existsSync(join(files, 'locked/a'))).toBe(false);
    expect(existsSync(join(files, 'locked/b'))).toBe(false);
    const ok = await w.run('scp', await token(), ['-O', src, `${s.connection}@127.0.0.1:${files}/legacy-ok`]);
    expect(ok.stderr).toBe('');
    expect(readFileSync(join(files, 'legacy-ok'), 'utf8')).toBe('payload\n');
    const down = await w.run('scp', await token(), ['-O', `${s.connection}@127.0.0.1:${files}/legacy-ok`, join(w.sshd.dir, 'back')]);
    expect(down.code).toBe(0);
    expect(readFileSync(join(w.sshd.dir, 'back'), 'utf8')).toBe('payload\n');
    writeFileSync(join(files, 'k2.pem'), 'key\n');
    const pem = await w.run('scp', await token(), ['-O', `${s.connection}@127.0.0.1:${files}/k2.pem`, join(w.sshd.dir, 'k2.pem')]);
    expect(pem.code).not.toBe(0);
    expect(pem.stderr).toContain('keys stay on the host');
    expect(existsSync(join(w.sshd.dir, 'k2.pem'))).toBe(false);
  });

  describe('scp -O (legacy) waits for an approval', () => {
    // a file whose path names HOLDME needs approval (markerPolicy); the scp command itself must not name
    // it (the command would wait for its own approval): uploads go into a directory, downloads are globs.
    // Binary and large enough to take several channel windows, so "intact" means every byte.
    const payload = randomBytes(300_000);
    const scpO = async (from: string, to: string) => spawnProgram('sshpass', ['-e', 'scp', ...w.clientOptions(), '-P', String(w.port()), '-O', from, to], { SSHPASS: await token() });
    const remote = (path: string) => `${s.connection}@127.0.0.1:${path}`;
    const localFile = (name: string) => {
      const dir = join(w.sshd.dir, `local-${randomBytes(3).toString('hex')}`);
      mkdirSync(dir);
      writeFileSync(join(dir, name), payload);
      return join(dir, name);
    };
    /** a directory on the host with these files (a download's glob `dir/*` sends them in name order) */
    const hostDir = (entries: Record<string, Buffer | string>) => {
      const dir = join(files, `d-${randomBytes(3).toString('hex')}`);
      mkdirSync(dir);
      for (const [name, body] of Object.entries(entries)) writeFileSync(join(dir, name), body);
      return dir;
    };
    const fileEvents = async () => (await readSessionEvents(s.h, undefined, 1)).filter((e) => e.type === 'file').map((e) => e.data as Record<string, unknown>);

    it('upload: the file record is held until approved, then the file arrives intact in the same invocation', async () => {
      const src = localFile('HOLDME-up');
      const dir = hostDir({});
      const run = await scpO(src, remote(`${dir}/`));
      const [pending] = await s.waitPending(sub);
      await run.saw(`portcullis: waiting for approval ${pending!.id} (hold-file: this file needs a second pair of eyes)`, 'stderr');
      expect(existsSync(join(dir, 'HOLDME-up'))).toBe(false);
      expect((await s.decide(pending!.id, 'approve', 'fine')).status).toBe(200);
      const r = await run.done;
      expect(r.code).toBe(0);
      expect(readFileSync(join(dir, 'HOLDME-up')).equals(payload)).toBe(true);
      await expect.poll(fileEvents, { timeout: 15_000, interval: 200 }).toEqual(expect.arrayContaining([
        expect.objectContaining({ via: 'scp', op: 'write', path: `${dir}/HOLDME-up`, action: 'require_approval', rule: 'hold-file', approvalId: pending!.id, approved: true }),
      ]));
    });

    it("download: the host's file record is held until approved, then the file arrives intact", async () => {
      const dir = hostDir({ 'HOLDME-down': payload });
      const dest = join(w.sshd.dir, `down-${randomBytes(3).toString('hex')}`);
      const run = await scpO(remote(`${dir}/*`), dest);
      const [pending] = await s.waitPending(sub);
      await run.saw(`portcullis: waiting for approval ${pending!.id}`, 'stderr');
      expect(existsSync(dest)).toBe(false);
      expect((await s.decide(pending!.id, 'approve')).status).toBe(200);
      const r = await run.done;
      expect(r.code).toBe(0);
      expect(readFileSync(dest).equals(payload)).toBe(true);
    });

    it('upload denied: scp exits non-zero with the reason, the file is not written on the host', async () => {
      const src = localFile('HOLDME-denied');
      const dir = hostDir({});
      const run = await scpO(src, remote(`${dir}/`));
      const [pending] = await s.waitPending(sub);
      await run.saw(`waiting for approval ${pending!.id}`, 'stderr');
      expect((await s.decide(pending!.id, 'deny', 'not this file')).status).toBe(200);
      const r = await run.done;
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`scp: write ${dir}/HOLDME-denied.*: approval ${pending!.id} denied by .+: not this file`));
      expect(existsSync(join(dir, 'HOLDME-denied'))).toBe(false);
    });

    it('download denied: scp exits non-zero with the reason, nothing is written locally; the next file still comes', async () => {
      // one `scp -f` for both: the held file first, then the free one
      const dir = hostDir({ 'HOLDME-denied': payload, free: 'free\n' });
      const dest = join(w.sshd.dir, `down-${randomBytes(3).toString('hex')}`);
      mkdirSync(dest);
      const run = await scpO(remote(`${dir}/*`), dest);
      const [pending] = await s.waitPending(sub);
      await run.saw(`waiting for approval ${pending!.id}`, 'stderr');
      expect((await s.decide(pending!.id, 'deny', 'stays there')).status).toBe(200);
      const r = await run.done;
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`scp: read ${dir}/HOLDME-denied: approval ${pending!.id} denied by .+: stays there`));
      expect(existsSync(join(dest, 'HOLDME-denied'))).toBe(false);
      expect(readFileSync(join(dest, 'free'), 'utf8')).toBe('free\n');
    });
  });
});
