import { connect as netConnect } from 'node:net';
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
});
