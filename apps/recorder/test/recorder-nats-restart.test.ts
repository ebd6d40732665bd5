// NATS restarting under a running recorder loses and duplicates nothing. The shared NATS server of the
// machine cannot be restarted by a test, so this file runs a private nats-server with JetStream on a free
// port and its own store directory, kills it (SIGKILL) mid-stream and starts it again on the same store.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WireEvent } from '@portcullis/protocol';
import { freePort } from '../../../test/support/free-port.js';

const NATS_BIN = '/usr/sbin/nats-server';
const store = mkdtempSync(join(tmpdir(), 'portcullis-nats-'));
let port = 0;
let server: ChildProcess | null = null;


async function startNats(): Promise<void> {
  server = spawn(NATS_BIN, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store], { stdio: 'ignore' });
  const end = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((r) => {
      const s = tcp(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (up) return;
    if (Date.now() > end) throw new Error('private nats-server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function killNats(): Promise<void> {
  const s = server;
  server = null;
  if (!s || s.exitCode !== null) return;
  const exited = new Promise((r) => s.once('exit', r));
  s.kill('SIGKILL');
  await exited;
}

// helpers.ts reads NATS_URL when it is imported, so it is imported after the private server's port is known.
let h: import('./helpers.js').Harness;
let helpers: typeof import('./helpers.js');

beforeAll(async () => {
  port = await freePort();
  await startNats();
  process.env.NATS_URL = `nats://127.0.0.1:${port}`;
  helpers = await import('./helpers.js');
  h = await new helpers.Harness().setup();
});

afterAll(async () => {
  await h?.teardown().catch(() => undefined);
  await killNats();
  rmSync(store, { recursive: true, force: true });
});

describe('recorder: NATS restarts', () => {
  it('persists every event exactly once, in order, across a NATS crash and restart', async () => {
    await h.recorder();
    const before = [h.newSession(), h.newSession()];
    const first: WireEvent[] = before.flatMap((id) => h.sessionEvents(id, 10));
    await h.publish(first);
    await h.waitFor(() => h.countFor(before), (n) => n === first.length);

    await killNats();
    await new Promise((r) => setTimeout(r, 500));
    await startNats();

    // The client and the recorder reconnect by themselves; then new sessions, plus old events published again
    // (a publisher retrying after the crash) must each be stored once.
    const after = [h.newSession(), h.newSession()];
    const second: WireEvent[] = after.flatMap((id) => h.sessionEvents(id, 10));
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await h.publish([...second, ...first.slice(0, 5)], { dedup: false });
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const all = [...before, ...after];
    await h.waitFor(() => h.countFor(all), (n) => n === first.length + second.length, 30_000);
    await new Promise((r) => setTimeout(r, 500)); // let any duplicate that would slip through arrive
    expect(await h.countFor(all)).toBe(first.length + second.length);
    for (const id of all) {
      const rows = await h.eventsOf(id);
      expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
      expect(helpers.brokenAt(rows)).toBeNull();
    }
  }, 90_000);
});
