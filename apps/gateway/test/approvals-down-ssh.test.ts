import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApprovalsStack, type ApprovalsStack } from '../../../test/support/approvals-stack.js';
import { markerPolicy } from './support/ssh-test-policy.js';
import { attachSshTarget, type SshWorld } from './support/ssh-world.js';

/**
 * With the approvals app down, a command an SSH session holds is listed by the api (GET
 * /v1/approvals) as soon as the hold is announced, as a held Postgres statement is
 * (approvals-worker-down.test.ts): the same signed announcement over NATS, recorded by the api; an
 * approver decides it there and the command runs. OpenSSH ssh, a real sshd, the approvals stack.
 */
let s: ApprovalsStack;
let w: SshWorld;
let files: string;
const sub = `carol-sshdown-${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  s = await startApprovalsStack({ timeoutSeconds: 60, harness: { sshPolicy: () => markerPolicy() } });
  await s.restartApp({ stopOnly: true });
  const policy = s.h.snapshotInput.policies[0]!.name;
  w = await attachSshTarget(s.h, { name: s.connection, policy });
  files = join(w.sshd.dir, 'files');
  mkdirSync(files, { recursive: true });
}, 120_000);
afterAll(async () => {
  await w?.stop();
  await s?.stop();
});

describe('approvals while the approvals app is down: SSH', () => {
  it('a held ssh command is in GET /v1/approvals while the client waits, and approving it there runs it', async () => {
    const run = w.spawnSsh(await s.credential({ sub }), [`echo HOLDME > ${files}/held-down && cat ${files}/held-down`]);
    await run.saw('waiting for approval', 'stderr');
    const id = /waiting for approval ([0-9a-f-]{36})/.exec(run.stderr())![1]!;
    let listed: { id: string; identity: string; status: string; statement: string }[] = [];
    const end = Date.now() + 10_000;
    while (Date.now() < end) {
      const r = await s.api.api(`/v1/approvals?status=pending&connection=${s.connection}`, { token: s.bobToken });
      expect(r.status).toBe(200);
      listed = (r.body as typeof listed).filter((a) => a.identity === sub);
      if (listed.length) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ id, status: 'pending', statement: expect.stringContaining('HOLDME') });
    expect(existsSync(join(files, 'held-down'))).toBe(false);
    expect((await s.decide(id, 'approve', 'approvals app is down, the api is not')).status).toBe(200);
    const r = await run.done;
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('HOLDME\n');
    expect(readFileSync(join(files, 'held-down'), 'utf8')).toBe('HOLDME\n');
  }, 90_000);
});
