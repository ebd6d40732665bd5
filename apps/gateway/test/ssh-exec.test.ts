import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSessionEvents, waitFor } from './support/harness.js';
import { startSshWorld, type SshWorld } from './support/ssh-world.js';

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
});
