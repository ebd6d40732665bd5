import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoPolicy } from '../../../scripts/lib/seed.mjs';
import { PG_ADMIN_URL, startHarness, type Harness } from './support/harness.js';
import { killAllPrograms, runProgram } from './support/run-program.js';

/**
 * pg_dump and pg_restore, the real programs, through the gateway: a plain dump equals the one taken
 * straight from the target (comment lines aside), a custom-format dump lists the same objects, and
 * pg_restore through the gateway rebuilds the database in another target.
 */

let h: Harness;
let dir: string;
const restoreDb = `gw_restore_${Math.random().toString(16).slice(2, 10)}`;

const setupSql = `
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE TABLE people (id serial primary key, name text not null, mood mood, tags text[], doc jsonb, born timestamptz, photo bytea);
  CREATE INDEX people_name ON people (name);
  CREATE VIEW happy_people AS SELECT id, name FROM people WHERE mood = 'happy';
  CREATE FUNCTION shout(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT upper(t) || '!' $$;
  CREATE SEQUENCE tickets START 100;
  INSERT INTO people (name, mood, tags, doc, born, photo)
    SELECT 'person ' || g, (array['sad','ok','happy'])[1 + g % 3]::mood, array['t' || g, 'x\ty'], jsonb_build_object('g', g, 'q', 'a"b'),
           timestamptz '2000-01-01 00:00:00+00' + g * interval '1 day', decode(md5(g::text), 'hex')
    FROM generate_series(1, 3000) g;
  INSERT INTO people (name) VALUES (E'tab\\there, newline\\nthere, backslash \\\\ and ünïcode');
  SELECT setval('tickets', 123);`;

beforeAll(async () => {
  h = await startHarness({ setupSql });
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${restoreDb}`);
  await admin.end();
  const target = h.snapshotInput.connections[0]!;
  await h.putSnapshot({
    connections: [target, { ...target, name: 'restore', database: restoreDb }, { ...target, name: 'demo', policy: 'default' }],
    // the demo's own policy document, as `pnpm start` seeds it
    policies: [{ name: 'default', version: 1, document: demoPolicy() }],
  });
  dir = mkdtempSync(join(tmpdir(), 'compat-pgdump-'));
});
afterAll(async () => {
  killAllPrograms();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await h?.stop();
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${restoreDb} WITH (FORCE)`).catch(() => undefined);
  await admin.end();
});

const directUri = (db: string) => PG_ADMIN_URL.replace(/\/[^/?]*(\?|$)/, `/${db}$1`);
/** A dump without comment and blank lines (versions, the dump's name) and its random `\restrict` key. */
const body = (dump: string) => dump.split('\n').filter((l) => l !== '' && !l.startsWith('--') && !/^\\(un)?restrict /.test(l)).join('\n');

describe('pg_dump through the gateway', () => {
  it('a plain dump is the same as one taken straight from the target', async () => {
    const via = await runProgram('pg_dump', ['--no-owner', '-d', h.connectionUri(await h.credential())], { timeoutMs: 30_000 });
    expect(via.code, via.stderr).toBe(0);
    expect(via.stderr).toBe('');
    const direct = await runProgram('pg_dump', ['--no-owner', '-d', directUri(h.dbName)], { timeoutMs: 30_000 });
    expect(direct.code, direct.stderr).toBe(0);
    expect(body(via.stdout)).toBe(body(direct.stdout));
    expect(via.stdout).toContain('COPY public.people (id, name, mood, tags, doc, born, photo) FROM stdin;');
    expect(via.stdout).toContain('tab\\there, newline\\nthere, backslash \\\\ and ünïcode');
    expect(via.stdout).toContain(`SELECT pg_catalog.setval('public.tickets', 123, true);`);
  });

  it('runs under the demo `default` policy (its first statement, set_config(name, …) FROM pg_settings WHERE name = …, is known to set restrict_nonsystem_relation_kind)', async () => {
    const via = await runProgram('pg_dump', ['--no-owner', '-d', h.connectionUri(await h.credential({ cn: 'demo' }), 'demo')], { timeoutMs: 30_000 });
    expect(via.code, via.stderr).toBe(0);
    expect(via.stderr).toBe('');
    expect(via.stdout).toContain('COPY public.people (id, name, mood, tags, doc, born, photo) FROM stdin;');
    expect(via.stdout).toContain('CREATE VIEW public.happy_people AS');
  });

  it('a custom-format dump lists with pg_restore -l and restores through the gateway', async () => {
    const file = join(dir, 'db.dump');
    const dump = await runProgram('pg_dump', ['-Fc', '--no-owner', '-f', file, '-d', h.connectionUri(await h.credential())], { timeoutMs: 30_000 });
    expect(dump.code, dump.stderr).toBe(0);
    const directFile = join(dir, 'direct.dump');
    const direct = await runProgram('pg_dump', ['-Fc', '--no-owner', '-f', directFile, '-d', directUri(h.dbName)], { timeoutMs: 30_000 });
    expect(direct.code, direct.stderr).toBe(0);

    // The TOC entries (ignoring the header and dump ids) are the same
    const toc = async (f: string) => {
      const r = await runProgram('pg_restore', ['-l', f]);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.replace(/^\d+;\s*\d+\s+\d+\s+/, '')).sort();
    };
    const list = await toc(file);
    expect(list).toEqual(await toc(directFile));
    expect(list).toEqual(expect.arrayContaining([expect.stringMatching(/^TABLE DATA public people/), expect.stringMatching(/^VIEW public happy_people/), expect.stringMatching(/^FUNCTION public shout/)]));

    // pg_restore through the gateway into another target (a connection named `restore`)
    const restore = await runProgram('pg_restore', ['--no-owner', '--exit-on-error', '-d', h.connectionUri(await h.credential({ cn: 'restore' }), 'restore'), file], { timeoutMs: 30_000 });
    expect(restore.code, restore.stderr).toBe(0);
    const check = new pg.Client({ connectionString: directUri(restoreDb) });
    await check.connect();
    try {
      const r = await check.query(`select count(*)::int n, count(*) filter (where mood = 'happy')::int happy, md5(string_agg(name || coalesce(encode(photo, 'hex'), ''), ',' order by id)) digest from people`);
      const orig = await h.targetQuery(`select count(*)::int n, count(*) filter (where mood = 'happy')::int happy, md5(string_agg(name || coalesce(encode(photo, 'hex'), ''), ',' order by id)) digest from people`);
      expect(r.rows[0]).toEqual(orig.rows[0]);
      expect((await check.query(`select shout('hi') s, last_value::int v from tickets`)).rows[0]).toEqual({ s: 'HI!', v: 123 });
    } finally {
      await check.end();
    }
  });
});
