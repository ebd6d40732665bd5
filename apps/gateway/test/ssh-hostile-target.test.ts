import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshd } from '../../../test/support/sshd.js';
import { startHarness } from './support/harness.js';
import { attachSshTarget, type SshWorld } from './support/ssh-world.js';

/**
 * What a target host sends that the gateway must not fall over on. The target here is a real sshd whose
 * ForceCommand stands in for a hostile (or broken) host: `pwd` — what the gateway asks to place a legacy
 * scp's relative paths — prints without end; every other command runs as asked, in a directory of the test.
 */

let w: SshWorld;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-hostile-target-'));
  const script = join(dir, 'target.sh');
  writeFileSync(script, [
    '#!/bin/sh',
    'if [ "$SSH_ORIGINAL_COMMAND" = "pwd" ]; then exec yes /a/login/directory/that/never/ends; fi',
    `cd ${dir} && exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"`,
    '',
  ].join('\n'));
  chmodSync(script, 0o755);
  writeFileSync(join(dir, 'relative.txt'), 'the file itself\n');
  const sshd = await startSshd({ extraConfig: `ForceCommand ${script}` });
  const h = await startHarness({ connection: { policy: null } });
  w = await attachSshTarget(h, { name: 'box' }, true, sshd);
}, 60_000);
afterAll(async () => {
  await w?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('ssh: a hostile target', () => {
  // the gateway read the whole answer to `pwd` into a string before the scp could go on: a host printing
  // forever grew the gateway's memory without bound and the scp never started
  it('a target whose `pwd` never ends: the gateway stops reading it, a legacy scp of a relative path goes on; the gateway serves the next client', async () => {
    const token = await w.h.credential({ cn: 'box' });
    const local = join(dir, 'copied.txt');
    const scp = await w.run('scp', token, ['-O', 'box@127.0.0.1:relative.txt', local], { timeoutMs: 30_000 });
    expect(scp.code, scp.stderr).toBe(0);
    expect(readFileSync(local, 'utf8')).toBe('the file itself\n');
    expect((await w.ssh(token, ['echo', 'alive'])).stdout).toBe('alive\n');
  });
});
