import { createHash } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePassword, encodeQuery, encodeStartupMessage } from '@portcullis/protocol';
import { startHarness, type Harness } from './support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ connection: { recording: 'best-effort' } });
});
afterAll(async () => {
  await h?.stop();
});

describe('backpressure', () => {
  it('a slow client reading a 200 MB result does not make the gateway buffer it', async () => {
    const token = await h.credential();
    const socket = netConnect({ host: '127.0.0.1', port: h.gateway.pgPort });
    await new Promise<void>((r) => socket.once('connect', () => r()));
    let received = 0;
    let done: () => void;
    const finished = new Promise<void>((r) => (done = r));
    let tail = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      received += d.length;
      tail = Buffer.concat([tail, d]).subarray(-64);
      // CommandComplete "SELECT 200000" then ReadyForQuery
      if (tail.includes('SELECT 200000') && tail.at(-6) === 0x5a) done();
    });
    socket.write(encodeStartupMessage({ user: 'carol', database: h.connectionName }));
    socket.write(encodePassword(token));
    await new Promise((r) => setTimeout(r, 300));
    global.gc?.();
    const before = process.memoryUsage().rss;
    socket.pause();
    socket.write(encodeQuery(`select repeat('x', 1000) from generate_series(1, 200000)`));
    // The client reads nothing for a while: Postgres keeps producing rows if the gateway lets it.
    await new Promise((r) => setTimeout(r, 2500));
    const during = process.memoryUsage().rss;
    const resumedAt = Date.now();
    socket.resume();
    await finished;
    socket.destroy();
    const growthMb = (during - before) / 1024 / 1024;
    if (process.env.GW_BENCH) process.stderr.write(`rss growth ${growthMb.toFixed(1)} MB, received ${received} bytes, drain ${Date.now() - resumedAt} ms\n`);
    expect(received).toBeGreaterThan(200 * 1000 * 1000);
    // Bounded by socket buffers and a few chunks, nowhere near the 200 MB result.
    expect(growthMb).toBeLessThan(40);
  }, 60_000);

  it('a client that stops reading mid-result still gets every byte right (the gateway reuses its read buffers)', async () => {
    const token = await h.credential();
    const c = new pg.Client(h.clientConfig(token));
    await c.connect();
    try {
      const stream = (c as unknown as { connection: { stream: import('node:net').Socket } }).connection.stream;
      // ~8 MB in many upstream reads (a short sleep every 8 rows of ~1 KB) while we read nothing:
      // the gateway's writes to us queue, it pauses upstream, and frames straddle its reads. Each
      // read lands in a buffer the gateway reuses unless a frame or a queued write still holds it.
      const q = c.query(
        `select g, repeat(md5(g::text), 30) || repeat('.', g % 97) as h, case when g % 8 = 0 then pg_sleep(0.001)::text end as s from generate_series(1, 8000) g`,
      );
      stream.pause();
      await new Promise((r) => setTimeout(r, 2000));
      stream.resume();
      const { rows } = await q;
      expect(rows).toHaveLength(8_000);
      const bad = rows.filter((r: { g: number; h: string }) => r.h !== createHash('md5').update(String(r.g)).digest('hex').repeat(30) + '.'.repeat(r.g % 97));
      expect(bad).toEqual([]);
    } finally {
      await c.end();
    }
  }, 60_000);
});
