import { connect } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../src/gateway.js';
import { startHarness, type Harness } from './support/harness.js';

/** Small protocol edges where the gateway must behave as Postgres does. */

let h: Harness;
let jsOnly: Gateway;
beforeAll(async () => {
  h = await startHarness();
  // the same relay without the native fast lane (the default gateway uses it where it can)
  jsOnly = await h.startGateway({ GATEWAY_FAST_LANE: 'false' });
});
afterAll(async () => {
  await h?.stop();
});

/** Sends raw bytes to a fresh connection; resolves with everything the gateway sent before closing. */
function rawExchange(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    const s = connect({ host: '127.0.0.1', port }, () => s.write(bytes));
    s.on('data', (b: Buffer) => got.push(b));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(got)));
    setTimeout(() => {
      s.destroy();
      reject(new Error('the gateway did not close the connection'));
    }, 5000);
  });
}

describe('before the startup packet', () => {
  it.each([
    { name: 'a Terminate', bytes: Buffer.from([0x58, 0, 0, 0, 4]) },
    { name: 'a Query', bytes: Buffer.concat([Buffer.from([0x51, 0, 0, 0, 13]), Buffer.from('select 1\0')]) },
    { name: 'a length below the minimum', bytes: Buffer.from([0, 0, 0, 2, 0, 0]) },
  ])('$name: the connection is closed with nothing sent (as Postgres does)', async ({ bytes }) => {
    const got = await rawExchange(h.gateway.pgPort, bytes);
    expect(got.length).toBe(0);
    // and the gateway goes on
    const c = new pg.Client(h.clientConfig(await h.credential()));
    await c.connect();
    expect((await c.query('select 1 as n')).rows[0].n).toBe(1);
    await c.end();
  });

  it('an unsupported protocol version still gets its FATAL (0A000), as from Postgres', async () => {
    const b = Buffer.alloc(8);
    b.writeInt32BE(8, 0);
    b.writeInt32BE(2 << 16, 4);
    const got = await rawExchange(h.gateway.pgPort, b);
    expect(got[0]).toBe(0x45); // ErrorResponse
    expect(got.toString('latin1')).toContain('0A000');
  });
});

describe.each([
  { lane: 'fast lane', gateway: () => h.gateway },
  { lane: 'JavaScript relay', gateway: () => jsOnly },
])('NOTIFY on the session that listens ($lane)', ({ gateway }) => {
  it('carries the pid the client knows from BackendKeyData (its own notifications can be told apart)', async () => {
    const config = { ...h.clientConfig(await h.credential()), port: gateway().pgPort };
    const a = new pg.Client(config);
    const b = new pg.Client(config);
    await a.connect();
    await b.connect();
    try {
      await a.query('LISTEN edges');
      const own = new Promise<pg.Notification>((resolve) => a.once('notification', resolve));
      await a.query(`NOTIFY edges, 'mine'`);
      const mine = await own;
      expect(mine.payload).toBe('mine');
      expect(mine.processId).toBe((a as unknown as { processID: number }).processID);
      // another session's notification keeps another pid
      const other = new Promise<pg.Notification>((resolve) => a.once('notification', resolve));
      await b.query(`NOTIFY edges, 'theirs'`);
      const theirs = await other;
      expect(theirs.payload).toBe('theirs');
      expect(theirs.processId).not.toBe((a as unknown as { processID: number }).processID);
    } finally {
      await a.end();
      await b.end();
    }
  });
});
