import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { FuzzHang, mutate, openRaw, pipeline, prng } from './support/pipeline-fuzz.js';

/**
 * A bounded, seeded protocol fuzzer against the gateway with a real Postgres behind it: valid-ish
 * pipelines (extended-protocol steps failing at Parse, Bind and Execute, simple queries sent before
 * the Sync, transactions) run through the gateway and straight against Postgres must get the same
 * answers, message for message; the gateway never hangs or crashes; and after it all a fresh
 * `select 1` works. The policy masks a column none of these statements reads, so the relay tracks
 * every result's layout (the path that withheld results after pipelined errors). Seed: FUZZ_SEED.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20261207);
const PIPELINES = Number(process.env.FUZZ_PIPELINES ?? 400);

const policy = {
  name: 'fuzz',
  guardrails: [{ name: 'no-session-killing', action: 'block', match: { functions: ['pg_terminate_backend'] } }],
  dynamicSql: 'allow',
  masking: [{ name: 'never-read', columns: ['vault.secret'], strategy: 'redact' }],
};

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ policies: [{ name: 'fuzz', version: 1, document: policy }], connection: { policy: 'fuzz' } });
});
afterAll(async () => {
  await h?.stop();
});

/** Errors compare by position only: the gateway refuses a statement it cannot parse (42501) where Postgres says 42601. */
const shape = (t: string[]) => t.map((l) => (l.startsWith('E ') ? 'E' : l));

/** A pipeline as type letters and texts, for a failure message. */
function describePipeline(p: Buffer[]): string {
  return p.map((b) => `${String.fromCharCode(b[0])}${b.length > 5 ? `(${b.subarray(5).toString('latin1').replace(/[^\x20-\x7e]/g, '.')})` : ''}`).join(' ');
}

describe('pipeline fuzzer (seeded, bounded)', () => {
  it(`${PIPELINES} pipelines from seed ${SEED}: the gateway answers as Postgres does`, async () => {
    const r = prng(SEED);
    const via = await openRaw(h.gateway.pgPort, { user: 'carol', database: h.connectionName, password: await h.credential() });
    const direct = await openRaw(5432, { user: 'postgres', database: h.dbName });
    let frames = 0;
    const mismatches: { i: number; via: string[]; direct: string[] }[] = [];
    try {
      for (let i = 0; i < PIPELINES; i++) {
        const p = pipeline(r);
        frames += p.length + 3;
        const [a, b] = await Promise.all([
          via.run(p).catch((e: Error) => { if (e instanceof FuzzHang) throw new FuzzHang(`gateway: ${describePipeline(p)}`); throw e; }),
          direct.run(p).catch((e: Error) => { if (e instanceof FuzzHang) throw new FuzzHang(`postgres: ${describePipeline(p)}`); throw e; }),
        ]);
        if (JSON.stringify(shape(a)) !== JSON.stringify(shape(b))) mismatches.push({ i, via: a, direct: b });
      }
    } catch (err) {
      if (err instanceof FuzzHang) throw new Error(`no answer (hang) after ${frames} frames: ${err.message}`);
      throw err;
    } finally {
      via.close();
      direct.close();
    }
    expect(mismatches.slice(0, 3)).toEqual([]);
    expect(frames).toBeGreaterThan(2000);
    const c = new pg.Client(h.clientConfig(await h.credential()));
    await c.connect();
    expect((await c.query('select 1 as n')).rows[0].n).toBe(1);
    await c.end();
  }, 180_000);

  it('broken frames (seeded): each session ends in a protocol error, goes on, or waits for bytes its broken length claims; never an internal error', async () => {
    const r = prng(SEED + 1);
    const outcomes = { closed: 0, went_on: 0, waiting: 0 };
    for (let i = 0; i < 60; i++) {
      const via = await openRaw(h.gateway.pgPort, { user: 'carol', database: h.connectionName, password: await h.credential() });
      const frames = pipeline(r).map((f) => (r() < 0.4 ? mutate(r, f) : f));
      try {
        const t = await via.raw(Buffer.concat(frames), 1500);
        expect(t).not.toContain('E XX000');
        if (t.includes('closed')) {
          outcomes.closed++;
          // a FATAL came before the close (08P01: the client broke the protocol)
          expect(t.filter((l) => l.startsWith('E ')).at(-1)).toMatch(/^E (08P01|0A000|54000|42501|[0-9A-Z]{5})$/);
        } else outcomes.went_on++;
      } catch (err) {
        if (!(err instanceof FuzzHang)) throw err;
        outcomes.waiting++;
      } finally {
        via.close();
      }
    }
    expect(outcomes.closed + outcomes.went_on + outcomes.waiting).toBe(60);
    expect(outcomes.closed).toBeGreaterThan(0);
    const c = new pg.Client(h.clientConfig(await h.credential()));
    await c.connect();
    expect((await c.query('select 1 as n')).rows[0].n).toBe(1);
    await c.end();
  }, 180_000);
});
