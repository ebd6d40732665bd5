import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * The ports a test takes for a server it starts later: below the kernel's ephemeral range
 * (net.ipv4.ip_local_port_range, 32768–60999 by default). The kernel gives ports of that range to every
 * outgoing connection as its local port, and a connection made between the pick and the server's listen —
 * any client of Postgres, Redis, NATS or a test server on the host — holds the port, and the listen fails
 * (EADDRINUSE; an e2e stack said "port … (DEV_IDP_PORT) already in use" after its migrations). Below the
 * range only listeners take ports, and each is seen by the check.
 */
const LOW = 20_000;
const HIGH = ephemeralLow() - 1;
/** each vitest worker (VITEST_POOL_ID) draws from its own slice: two files starting at once do not pick the same port */
const SLICES = 16;
const sliceSize = Math.floor((HIGH - LOW + 1) / SLICES);
const slice = (Number(process.env.VITEST_POOL_ID ?? 1) - 1) % SLICES;
/** the last port handed out in this process: the next pick goes on round the slice from there (from a random place at first) */
let cursor = Math.floor(Math.random() * sliceSize);

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > LOW + 1000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/** Whether a listener on `port` (every address, as `pnpm start` checks) could be made now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** The OS's pick (the ephemeral range): where the range below it is too small to slice. */
function anyPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on right now (released at once, for a server started later). */
export async function freePort(): Promise<number> {
  if (sliceSize < 64) return anyPort();
  for (let i = 0; i < sliceSize; i++) {
    cursor = (cursor + 1) % sliceSize;
    const port = LOW + slice * sliceSize + cursor;
    if (await canListen(port)) return port;
  }
  return anyPort();
}
