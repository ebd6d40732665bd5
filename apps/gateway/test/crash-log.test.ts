import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The gateway's entry point (dist/main.js) installs logFatalErrors: a bug that escapes every handler
 * still stops the process (exit 1: no catch-all keeps a broken process serving), and its JSON log
 * says why first. Run in a child node on the built modules, as main.ts runs them.
 */
const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');

function dies(body: string): Promise<{ code: number | null; lines: Record<string, unknown>[]; stderr: string }> {
  const script = [
    `import { createLogger } from ${JSON.stringify(pathToFileURL(join(dist, 'logger.js')).href)};`,
    `import { logFatalErrors } from ${JSON.stringify(pathToFileURL(join(dist, 'crash-log.js')).href)};`,
    `logFatalErrors(createLogger('info', { gateway: 'gw-test' }));`,
    body,
    // still alive a second later: the bug did not stop it
    `setTimeout(() => console.log(JSON.stringify({ msg: 'still running' })), 1000);`,
  ].join('\n');
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('close', (code) => resolve({ code, stderr, lines: out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) }));
  });
}

describe('a crash of the gateway process is logged with its reason', () => {
  it('an exception thrown in a timer: one fatal line naming it, then the process exits 1', async () => {
    const r = await dies(`setTimeout(() => { throw new Error('boom in a timer'); }, 10);`);
    expect(r.code).toBe(1);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatchObject({ level: 60, gateway: 'gw-test', origin: 'uncaughtException', err: 'boom in a timer', msg: 'gateway stopping: an exception nothing caught (a bug): boom in a timer' });
    expect(String(r.lines[0]!.stack)).toContain('boom in a timer');
    expect(r.stderr).toContain('boom in a timer');
  });

  it('a promise rejected with nothing to handle it: one fatal line naming it, then the process exits 1', async () => {
    const r = await dies(`setTimeout(() => void Promise.reject(new Error('boom in a promise')), 10);`);
    expect(r.code).toBe(1);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatchObject({ level: 60, origin: 'unhandledRejection', err: 'boom in a promise', msg: 'gateway stopping: a promise rejected and nothing handled it (a bug): boom in a promise' });
  });
});
