import { createHash } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../src/gateway.js';
import { startHarness, type Harness } from './support/harness.js';

/**
 * The buffer budget (core/buffer-budget.ts): large messages on the JavaScript relay reserve
 * their size from a per-session share and a process-wide budget; a session that cannot get it stops
 * being read until others have delivered theirs. Several sessions pulling large rows at once all get
 * them whole and correct, while the gateway never holds more than its budget.
 */

const MiB = 1024 * 1024;
const PROCESS = 40 * MiB;
const SESSION = 24 * MiB;

let h: Harness;
let g: Gateway;
beforeAll(async () => {
  h = await startHarness();
  // the JavaScript relay (the native fast lane streams what it passes and holds no whole message)
  g = await h.startGateway({ GATEWAY_FAST_LANE: 'false', GATEWAY_BUFFER_BYTES: String(PROCESS), GATEWAY_SESSION_BUFFER_BYTES: String(SESSION) });
});
afterAll(async () => {
  await h?.stop();
});

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ ...h.clientConfig(await h.credential()), port: g.pgPort });
  await c.connect();
  return c;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('buffer budget', () => {
  it('4 sessions pulling 2 rows of 16 MiB each at once all complete correctly; the gateway holds at most its budget', async () => {
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, g.buffers.inUse)), 1);
    const waitsBefore = (await g.metrics.bufferWaits.get()).values.reduce((n, v) => n + v.value, 0);
    try {
      const sessions = await Promise.all(Array.from({ length: 4 }, () => client()));
      try {
        const results = await Promise.all(
          sessions.map(async (c, i) => {
            const r = await c.query(`select g, repeat(chr(65 + (g + ${i}) % 26), 16 * 1024 * 1024) as body from generate_series(1, 2) g order by g`);
            return r.rows.map((row: { g: number; body: string }) => ({ g: row.g, length: row.body.length, sha: sha(row.body) }));
          }),
        );
        for (const [i, rows] of results.entries()) {
          expect(rows.map((r) => r.g)).toEqual([1, 2]);
          for (const r of rows) {
            expect(r.length).toBe(16 * MiB);
            expect(r.sha).toBe(sha(String.fromCharCode(65 + ((r.g + i) % 26)).repeat(16 * MiB)));
          }
        }
        // each session goes on
        for (const c of sessions) expect((await c.query('select 1 as n')).rows[0].n).toBe(1);
      } finally {
        await Promise.all(sessions.map((c) => c.end()));
      }
    } finally {
      clearInterval(sampler);
    }
    expect(peak).toBeGreaterThan(16 * MiB);
    expect(peak).toBeLessThanOrEqual(PROCESS);
    const waits = (await g.metrics.bufferWaits.get()).values.reduce((n, v) => n + v.value, 0) - waitsBefore;
    expect(waits).toBeGreaterThan(0);
    expect(g.buffers.inUse).toBe(0);
    const metrics = await g.metrics.registry.metrics();
    expect(metrics).toMatch(/portcullis_gateway_buffered_bytes 0/);
  }, 120_000);

  it('a large statement from the client is reserved too (a 20 MiB insert arrives whole)', async () => {
    const c = await client();
    try {
      const body = 'z'.repeat(20 * MiB);
      const r = await c.query('select length($1::text) as n, md5($1::text) as m', [body]);
      expect(r.rows[0].n).toBe(20 * MiB);
      expect(r.rows[0].m).toBe(createHash('md5').update(body).digest('hex'));
    } finally {
      await c.end();
    }
    expect(g.buffers.inUse).toBe(0);
  }, 60_000);

  it('a row larger than a session may hold ends that session with 54000; others go on', async () => {
    const c = await client();
    const ended = new Promise<Error>((resolve) => c.on('error', resolve));
    const err = await c.query(`select repeat('x', 30 * 1024 * 1024)`).then(
      () => null,
      (e: Error) => e,
    );
    expect((err as pg.DatabaseError | null)?.code).toBe('54000');
    expect(err?.message).toContain(`exceeds the gateway's limit of ${SESSION} bytes per session`);
    await Promise.race([ended, new Promise((r) => setTimeout(r, 2000))]);
    const other = await client();
    expect((await other.query('select 1 as n')).rows[0].n).toBe(1);
    await other.end();
    expect(g.buffers.inUse).toBe(0);
  }, 60_000);
});
