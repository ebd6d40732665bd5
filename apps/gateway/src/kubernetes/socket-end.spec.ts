import { createServer, connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { endGracefully } from './socket-end.js';

/** A TCP connection on 127.0.0.1: the gateway's side (`near`) and a client (`far`) that reads only when told. */
async function pair(): Promise<{ near: Socket; far: Socket; close: () => void }> {
  let near!: Socket;
  const server = createServer((s) => (near = s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const far = connect(port, '127.0.0.1');
  far.pause();
  await new Promise<void>((r) => far.once('connect', () => r()));
  while (!near) await new Promise((r) => setImmediate(r));
  return { near, far, close: () => { near.destroy(); far.destroy(); server.close(); } };
}

const open: (() => void)[] = [];
afterEach(() => {
  for (const c of open.splice(0)) c();
});

describe('endGracefully', () => {
  it('what is still queued for a client that has not read it yet reaches it, then the end', async () => {
    const p = await pair();
    open.push(p.close);
    const size = 32 * 1024 * 1024;
    p.near.write(Buffer.alloc(size, 0x78));
    // more than the kernel's buffers take: most of it waits in the process, which destroy() would drop
    expect(p.near.writableLength).toBeGreaterThan(0);
    endGracefully(p.near, 60_000);
    let got = 0;
    p.far.on('data', (b: Buffer) => (got += b.length));
    const ended = new Promise<void>((r) => p.far.once('end', () => r()));
    p.far.resume();
    await ended;
    expect(got).toBe(size);
  });

  it('a client that takes nothing is cut off after the grace period', async () => {
    const p = await pair();
    open.push(p.close);
    p.near.write(Buffer.alloc(32 * 1024 * 1024));
    const closed = new Promise<void>((r) => p.near.once('close', () => r()));
    endGracefully(p.near, 100);
    await closed;
    expect(p.near.destroyed).toBe(true);
  });
});
