import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { killAllPrograms, runProgram } from './support/run-program.js';

/**
 * pgbench, the real program, through the gateway: `pgbench -i` (DDL, COPY FROM STDIN, VACUUM on a
 * connection with no policy), then 4 clients for 3 s in each query mode. The extended and prepared
 * modes exercise Parse/Bind/Execute pipelines and named statements reused thousands of times.
 */

let h: Harness;
const policy = {
  name: 'default',
  guardrails: [
    { name: 'no-destructive-ddl', action: 'block', match: { statements: ['DROP', 'TRUNCATE', 'ALTER', 'GRANT', 'REVOKE', 'CREATE ROLE', 'ALTER ROLE'] } },
    { name: 'bulk-writes', action: 'require_approval', match: { statements: ['DELETE', 'UPDATE'], unbounded: true } },
  ],
  dynamicSql: 'block',
  masking: [{ name: 'pii', detectors: ['CREDIT_CARD', 'US_SSN', 'EMAIL'], strategy: 'redact' }],
};

beforeAll(async () => {
  h = await startHarness({ policies: [{ name: 'default', version: 1, document: policy }] });
  const target = h.snapshotInput.connections[0]!;
  await h.putSnapshot({ connections: [target, { ...target, name: 'guarded', policy: 'default' }] });
});
afterAll(async () => {
  killAllPrograms();
  await h?.stop();
});

async function uri(): Promise<string> {
  return h.connectionUri(await h.credential());
}

describe('pgbench through the gateway', () => {
  it('pgbench -i creates and fills the tables', async () => {
    const r = await runProgram('pgbench', ['-i', '-s', '1', '-q', await uri()], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/done in/);
    const n = await h.targetQuery('select (select count(*) from pgbench_accounts)::int a, (select count(*) from pgbench_branches)::int b, (select count(*) from pgbench_tellers)::int t');
    expect(n.rows[0]).toEqual({ a: 100_000, b: 1, t: 10 });
  });

  it.each(['simple', 'extended', 'prepared'])('pgbench -c 4 -T 3 -M %s: no failed transaction, tps > 0', async (mode) => {
    const before = (await h.targetQuery('select count(*)::int n from pgbench_history')).rows[0].n as number;
    const r = await runProgram('pgbench', ['-c', '4', '-j', '2', '-T', '3', '-M', mode, '-n', await uri()], { timeoutMs: 30_000 });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`query mode: ${mode}`));
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1]);
    const failed = Number(/number of failed transactions: (\d+)/.exec(r.stdout)?.[1]);
    const tps = Number(/tps = ([\d.]+)/.exec(r.stdout)?.[1]);
    expect(failed).toBe(0);
    expect(processed).toBeGreaterThan(0);
    expect(tps).toBeGreaterThan(0);
    expect(r.stderr).not.toMatch(/error|abort/i);
    // every transaction really reached the target
    const after = (await h.targetQuery('select count(*)::int n from pgbench_history')).rows[0].n as number;
    expect(after - before).toBe(processed);
  });

  it('pgbench -M prepared under a policy: every statement decided (UPDATEs have a WHERE), none failed', async () => {
    const r = await runProgram('pgbench', ['-c', '4', '-j', '2', '-T', '2', '-M', 'prepared', '-n', h.connectionUri(await h.credential({ cn: 'guarded' }), 'guarded')], { timeoutMs: 30_000 });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(Number(/number of failed transactions: (\d+)/.exec(r.stdout)?.[1])).toBe(0);
    expect(Number(/tps = ([\d.]+)/.exec(r.stdout)?.[1])).toBeGreaterThan(0);
  });

  it('a built-in select-only script with connection per transaction (-C)', async () => {
    const r = await runProgram('pgbench', ['-c', '2', '-t', '25', '-C', '-S', '-n', await uri()], { timeoutMs: 30_000 });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1])).toBe(50);
    expect(Number(/number of failed transactions: (\d+)/.exec(r.stdout)?.[1])).toBe(0);
  });
});
