import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticCustomers } from '../../../scripts/lib/demo-db.mjs';
import { demoPolicy } from '../../../scripts/lib/seed.mjs';
import { startHarness, type Harness } from './support/harness.js';
import { killAllPrograms, runProgram } from './support/run-program.js';

/**
 * The demo as `pnpm start` seeds it — its policy (scripts/lib/seed.mjs) over its customers
 * (scripts/lib/demo-db.mjs) — against the side channels a hostile session tried: no raw value of a
 * masked column comes back, whatever the route; and the README's demo output is what psql prints.
 */

const people = syntheticCustomers(50) as { id: number; name: string; email: string; phone: string; card_number: string; ssn: string; notes: string }[];
const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
const secrets = people.flatMap((p) => [p.email, p.phone, p.card_number, p.ssn, p.card_number.slice(0, 9)]);

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    connection: { policy: 'default' },
    policies: [{ name: 'default', version: 1, document: demoPolicy() }],
    setupSql: `CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE, phone text, card_number text, ssn text, notes text);
      INSERT INTO customers VALUES ${people.map((p) => `(${p.id}, ${[p.name, p.email, p.phone, p.card_number, p.ssn, p.notes].map(lit).join(', ')})`).join(', ')};
      CREATE FUNCTION audit_hit(v text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN RAISE NOTICE 'hit %', v; RETURN true; END $f$;`,
  });
});
afterAll(async () => {
  killAllPrograms();
  await h?.stop();
});

async function psql(sql: string, args: string[] = []) {
  const token = await h.credential();
  return runProgram('psql', ['-X', ...args, '-v', 'VERBOSITY=verbose', '-d', h.connectionUri(token, 'target'), '-c', sql]);
}

function expectNoSecret(text: string): void {
  for (const s of secrets) expect(text).not.toContain(s);
}

describe('the demo policy over the demo data', () => {
  it("psql: the README's demo query prints what the README shows (notes' SSN caught by its label)", async () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const m = /psql "\$URI" -c '(SELECT name, email, phone, card_number, ssn, notes FROM customers LIMIT \d+)'\n```\n```\n([\s\S]*?)```/.exec(readme);
    expect(m, 'the README shows the demo query and its output').not.toBeNull();
    const r = await psql(m![1]!);
    expect(r.stderr).toBe('');
    // psql pads the last column's header with spaces; the README's lines end without them
    expect(r.stdout.split('\n').map((l) => l.trimEnd()).join('\n').trimEnd()).toBe(m![2]!.trimEnd());
    expectNoSecret(r.stdout);
    expect(r.stdout).toContain('Identity verified with SSN [REDACTED].');
  });

  it.each([
    ['a detector defeated by translate() is no boundary: the column rule refuses it', "SELECT translate(card_number, '0123456789', 'abcdefghij') FROM customers", 'cards'],
    ['phone digits spelled out', "SELECT replace(phone, '-', ' dash ') FROM customers", 'phones'],
    ['table_to_xml', "SELECT table_to_xml('customers', true, true, '')", 'emails'],
    ['query_to_xml', "SELECT query_to_xml('select ssn from customers', true, true, '')", 'ssns'],
    ['ts_rewrite with a query string', "SELECT ts_rewrite('a'::tsquery, 'SELECT replace(ssn, ''-'', '''')::tsquery, ''b''::tsquery FROM customers')", 'ssns'],
    ['a side effect in a filter', "SELECT id FROM customers WHERE set_config('app.x', card_number, false) <> ''", 'cards'],
    ['a user function in a filter', 'SELECT id FROM customers WHERE audit_hit(phone)', 'phones'],
  ])('psql: %s', async (_name, sql, rule) => {
    const r = await psql(sql);
    expect(r.stderr).toMatch(/ERROR:\s+42501:/);
    expect(r.stderr).toContain(`masked by rule ${rule}`);
    expectNoSecret(r.stdout + r.stderr);
  });

  it('pg driver: a failing cast of a masked column in a filter keeps 22P02 but not the value', async () => {
    const c = new pg.Client(h.clientConfig(await h.credential()));
    await c.connect();
    try {
      const err = await c.query('SELECT id FROM customers WHERE ssn::int = $1', [1]).catch((e: unknown) => e as pg.DatabaseError);
      expect(err).toMatchObject({ code: '22P02' });
      expectNoSecret(JSON.stringify(err) + (err as Error).message);
    } finally {
      await c.end();
    }
  });

  it('psql: DELETE … USING a temporary table joined on the masked email runs', async () => {
    const gone = people[49]!;
    const r = await psql(`CREATE TEMP TABLE tmp (email text); INSERT INTO tmp VALUES (${lit(gone.email)}); DELETE FROM customers USING tmp WHERE customers.email = tmp.email`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('DELETE 1');
    expect((await h.targetQuery('SELECT count(*)::int AS n FROM customers WHERE id = $1', [gone.id])).rows[0]).toEqual({ n: 0 });
  });
});
