import { spawn } from 'node:child_process';

export interface ProgramResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Live child processes of the test file, killed by `killAll` (afterAll) if a test left one behind. */
const children = new Set<import('node:child_process').ChildProcess>();

/**
 * Runs a real program (psql, pgbench, pg_dump...) with optional stdin, collecting its output.
 * Never rejects on a non-zero exit: the test looks at `code` and `stderr`. Killed after `timeoutMs`.
 */
export function runProgram(
  cmd: string,
  args: string[],
  opts: { input?: string | Buffer; env?: Record<string, string>; timeoutMs?: number; encoding?: 'utf8' | 'latin1' } = {},
): Promise<ProgramResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', HOME: process.env.HOME ?? '/tmp', PGCONNECT_TIMEOUT: '10', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    children.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => undefined); // the program may exit before reading all its input
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      children.delete(child);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      const enc = opts.encoding ?? 'utf8';
      resolve({ code, signal, stdout: Buffer.concat(out).toString(enc), stderr: Buffer.concat(err).toString(enc) });
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

export function killAllPrograms(): void {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  children.clear();
}
