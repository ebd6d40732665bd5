import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSessionEvents, waitFor } from '../apps/gateway/test/support/harness.js';
import { markerPolicy } from '../apps/gateway/test/support/ssh-test-policy.js';
import { attachSshTarget, type SshWorld } from '../apps/gateway/test/support/ssh-world.js';
import { startApprovalsStack, type ApprovalsStack } from './support/approvals-stack.js';

const run = promisify(execFile);

/**
 * An SSH shell through the gateway, recorded end to end: the gateway's `terminal` events go through
 * NATS to the real recorder, the api serves them as asciicast v2 that the real `asciinema` reads
 * back as what the client saw (masked), and the session's hash chain verifies.
 */

let s: ApprovalsStack;
let w: SshWorld;
let auditor: string;
const dir = mkdtempSync(join(tmpdir(), 'ssh-cast-'));
const sock = `portcullis-rec-${randomBytes(3).toString('hex')}`;
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', sock, ...args], { encoding: 'utf8' });

beforeAll(async () => {
  s = await startApprovalsStack({ harness: { sshPolicy: () => markerPolicy() } });
  w = await attachSshTarget(s.h, { name: s.connection, policy: null });
  await s.startRecorder();
  auditor = await s.auditorToken();
}, 120_000);

afterAll(async () => {
  try {
    tmux('kill-server');
  } catch {
    // not running
  }
  await w?.stop();
  if (s) {
    await s.stop();
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('ssh recording', () => {
  it('a shell session replays with asciinema as the client saw it (masked), and its hash chain verifies', async () => {
    const token = await s.credential({ sub: `carol-rec-${randomBytes(2).toString('hex')}` });
    const args = ['sshpass', '-e', 'ssh', '-tt', ...w.clientOptions(), '-p', String(w.port()), `${s.connection}@127.0.0.1`];
    tmux('new-session', '-d', '-s', 'rec', '-x', '100', '-y', '30', '-e', `SSHPASS=${token}`, ...args);
    const pane = () => tmux('capture-pane', '-p', '-t', 'rec');
    tmux('send-keys', '-t', 'rec', "export PS1='rec> '", 'Enter');
    await waitFor(() => /^rec>\s*$/m.test(pane()), 20_000, 50);
    tmux('send-keys', '-t', 'rec', 'echo recorded-$((20+1)) SECRET-$((123000+456))', 'Enter');
    await waitFor(() => pane().includes('recorded-21 [masked]'), 20_000, 50);
    tmux('send-keys', '-t', 'rec', 'exit', 'Enter');

    let sessionId = '';
    await waitFor(async () => {
      const events = await readSessionEvents(s.h, undefined, 1);
      const cmd = events.find((e) => e.type === 'command' && String((e.data as { command?: string }).command).startsWith('echo recorded-'));
      if (!cmd) return false;
      sessionId = String(cmd.sessionId);
      return events.some((e) => e.sessionId === sessionId && e.type === 'session.end');
    }, 20_000, 100);
    await waitFor(async () => {
      const r = await s.api.api(`/v1/sessions/${sessionId}/verify`, { token: auditor });
      return r.status === 200 && r.body.valid === true && r.body.events === (await readSessionEvents(s.h, sessionId, 1)).length;
    }, 20_000, 200);

    const res = await fetch(`${s.api.apiUrl}/v1/sessions/${sessionId}/recording.cast`, { headers: { Authorization: `Bearer ${auditor}` } });
    expect(res.status).toBe(200);
    const cast = await res.text();
    const [header, ...frames] = cast.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(header).toMatchObject({ version: 2, width: 100, height: 30 });
    const output = frames.filter((f: [number, string, string]) => f[1] === 'o').map((f: [number, string, string]) => f[2]).join('');
    expect(output).toContain('recorded-21 [masked]');
    expect(output).not.toContain('123456');
    const file = join(dir, 'shell.cast');
    writeFileSync(file, cast);
    // asciinema cat wants a terminal: a pty from script, without its LF → CR LF translation
    const { stdout } = await run('script', ['-qec', `stty -onlcr; asciinema cat '${file}'`, '/dev/null'], { env: { ...process.env, LANG: 'C.UTF-8' } });
    expect(stdout).toContain('recorded-21 [masked]');
    expect(stdout).toBe(output);
  });
});
