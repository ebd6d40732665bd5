import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../../../test/support/free-port.js';

/**
 * A private NATS server with JetStream, for tests that stop and restart NATS (the shared one on
 * :4222 must stay up for everyone else). Same port and store dir across restarts, so streams and
 * KV buckets survive, as they would on a real server restart.
 */
export interface PrivateNats {
  url: string;
  port: number;
  /** SIGKILL: NATS goes away without a goodbye */
  kill(): Promise<void>;
  /** starts it again on the same port and store */
  restart(): Promise<void>;
  /** stops it and removes its store */
  stop(): Promise<void>;
}

const BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
const live = new Set<ChildProcess>();
let hooked = false;


function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export async function startPrivateNats(): Promise<PrivateNats> {
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  const base = mkdtempSync(join(tmpdir(), 'portcullis-nats-'));
  const storeDir = join(base, 'store');
  const pidFile = join(base, 'server.pid');
  const port = await freePort();
  // Exit hooks do not run when the test worker is killed: a detached watchdog kills the server
  // (whose pid it reads from pidFile, as restarts change it) and removes the dir once we are gone.
  const watchdog = spawn(
    '/bin/sh',
    ['-c', 'while kill -0 "$WATCH_PID" 2>/dev/null; do sleep 1; done; [ -f "$PID_FILE" ] && kill -9 "$(cat "$PID_FILE")" 2>/dev/null; rm -rf "$BASE_DIR"'],
    { detached: true, stdio: 'ignore', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', WATCH_PID: String(process.pid), PID_FILE: pidFile, BASE_DIR: base } },
  );
  watchdog.unref();
  let child: ChildProcess | null = null;
  let log = '';

  const start = async (): Promise<void> => {
    const c = spawn(BIN, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(c);
    writeFileSync(pidFile, String(c.pid));
    c.stdout!.on('data', (b: Buffer) => (log += b.toString()));
    c.stderr!.on('data', (b: Buffer) => (log += b.toString()));
    c.on('exit', () => live.delete(c));
    child = c;
    const end = Date.now() + 10_000;
    while (!/Server is ready/.test(log) || !(await accepts(port))) {
      if (c.exitCode !== null) throw new Error(`nats-server exited: ${log}`);
      if (Date.now() > end) throw new Error(`nats-server did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const kill = async (): Promise<void> => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    kill,
    restart: async () => {
      await kill();
      log = '';
      await start();
    },
    stop: async () => {
      await kill();
      rmSync(base, { recursive: true, force: true });
      if (watchdog.pid !== undefined && watchdog.exitCode === null) {
        try {
          process.kill(watchdog.pid);
        } catch {
          // already gone
        }
      }
    },
  };
}
