import { createHash } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SocketReads } from './socket-reads.js';

/** A server that sends `total` bytes of a counting pattern to each client, in writes of `piece` bytes. */
async function patternServer(total: number, piece: number): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    let sent = 0;
    const pump = (): void => {
      while (sent < total) {
        const n = Math.min(piece, total - sent);
        const b = Buffer.alloc(n);
        for (let i = 0; i < n; i++) b[i] = (sent + i) % 251;
        sent += n;
        if (!s.write(b)) {
          s.once('drain', pump);
          return;
        }
      }
      s.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

function expected(total: number): Buffer {
  const b = Buffer.alloc(total);
  for (let i = 0; i < total; i++) b[i] = i % 251;
  return b;
}

let server: Server | null = null;
afterEach(() => {
  server?.close();
  server = null;
});

function open(port: number, reads: SocketReads): Socket {
  const s = connect({ host: '127.0.0.1', port, onread: reads.onread });
  reads.attach(s);
  return s;
}

describe('SocketReads', () => {
  it('before a sink is set, each read is emitted as a copied data event', async () => {
    const total = 3 * 1024 * 1024;
    const x = await patternServer(total, 16 * 1024);
    server = x.server;
    const s = open(x.port, new SocketReads());
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    await new Promise((r) => s.on('end', r));
    s.destroy();
    const all = Buffer.concat(chunks);
    expect(all.length).toBe(total);
    expect(createHash('sha256').update(all).digest('hex')).toBe(createHash('sha256').update(expected(total)).digest('hex'));
  });

  it('chunks a sink says it keeps are never overwritten by later reads; the others share one buffer', async () => {
    const total = 8 * 1024 * 1024;
    const x = await patternServer(total, 8 * 1024);
    server = x.server;
    const reads = new SocketReads();
    const s = open(x.port, reads);
    const kept: { at: number; chunk: Buffer }[] = [];
    const buffers = new Set<ArrayBufferLike>();
    let offset = 0;
    let reused = 0;
    let n = 0;
    const ended = new Promise((r) => s.on('end', r));
    reads.setSink((chunk) => {
      buffers.add(chunk.buffer);
      const keep = n++ % 3 === 0;
      if (keep) kept.push({ at: offset, chunk });
      else reused++;
      offset += chunk.length;
      return keep;
    });
    await ended;
    s.destroy();
    expect(offset).toBe(total);
    expect(reused).toBeGreaterThan(0);
    // every kept chunk, read long ago, still holds exactly its own bytes
    const want = expected(total);
    for (const k of kept) expect(k.chunk.equals(want.subarray(k.at, k.at + k.chunk.length))).toBe(true);
    // a fresh buffer only after each kept chunk: the chunks in between reused the one before
    expect(buffers.size).toBeLessThanOrEqual(kept.length + 1);
  });
});
