import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { killAllPrograms, runProgram } from './support/run-program.js';

/**
 * What a user tries first against a masking proxy, with psql and the pg driver: rename the column,
 * wrap it in a subquery or an alias list, compute something from it, take the whole row, copy it
 * into a table. Column rules alone here (no detector to catch what they miss): renamed columns are
 * masked by their origin (the table column the server says they are), the rest is refused.
 */

const policy = {
  name: 'default',
  guardrails: [],
  dynamicSql: 'block',
  masking: [
    { name: 'ssns', columns: ['ssn'], strategy: 'redact' },
    { name: 'cards', columns: ['customers.card_number'], strategy: 'partial' },
    { name: 'emails', columns: ['email'], strategy: 'partial' },
    // a net for free text, e.g. error and notice texts of statements that name no masked column
    { name: 'pii', detectors: ['US_SSN'], strategy: 'redact' },
  ],
};
const SSN = '123-45-6789';
const CARD = '4111 1111 1111 1111';
const EMAIL = 'ada.lovelace@example.com';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    connection: { policy: 'default' },
    policies: [{ name: 'default', version: 1, document: policy }],
    setupSql: `CREATE TABLE customers (id int primary key, name text, ssn text, card_number text, email text UNIQUE);
      INSERT INTO customers VALUES (1, 'Ada', '${SSN}', '${CARD}', '${EMAIL}');
      -- made outside the gateway, as an existing function of the target would be
      CREATE TABLE sink (v text);
      CREATE FUNCTION leak(v text) RETURNS boolean LANGUAGE plpgsql AS $f$
        BEGIN RAISE NOTICE 'leak: %', v; INSERT INTO sink VALUES (v); RETURN true; END $f$;
      CREATE FUNCTION noisy() RETURNS int LANGUAGE plpgsql AS $f$
        BEGIN RAISE NOTICE 'first customer: %', (SELECT ssn FROM customers ORDER BY id LIMIT 1)
          USING DETAIL = 'ssn ' || (SELECT ssn FROM customers ORDER BY id LIMIT 1); RETURN 1; END $f$;`,
  });
});
afterAll(async () => {
  killAllPrograms();
  await h?.stop();
});

async function psql(sql: string) {
  const token = await h.credential();
  return runProgram('psql', ['-X', '-A', '-t', '-F', '|', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose', '-d', h.connectionUri(token, 'target'), '-c', sql]);
}

describe('masking holds against renaming', () => {
  it.each([
    ['an alias', 'SELECT ssn AS x, card_number AS cc FROM customers'],
    ['a subquery alias', 'SELECT x, cc FROM (SELECT ssn AS x, card_number AS cc FROM customers) s'],
    ['a CTE column list', 'WITH w(x, cc) AS (SELECT ssn, card_number FROM customers) SELECT x, cc FROM w'],
    ['a table alias column list', 'SELECT x, cc FROM customers AS c(i, n, x, cc)'],
  ])('psql: %s still gets masked values', async (_name, sql) => {
    const r = await psql(sql);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('[REDACTED]|**** **** **** 1111');
    expect(r.stdout).not.toContain(SSN);
  });

  it('psql: a UNION keeps a masked column under its own name, so it is masked by name; moved to another name it is refused', async () => {
    const same = await psql('SELECT ssn, card_number FROM customers UNION ALL SELECT ssn, card_number FROM customers');
    expect(same.stderr).toBe('');
    expect(same.stdout.trim().split('\n')).toEqual(['[REDACTED]|**** **** **** 1111', '[REDACTED]|**** **** **** 1111']);
    const moved = await psql('SELECT name, id FROM customers UNION ALL SELECT ssn, id FROM customers');
    expect(moved.stderr).toMatch(/ERROR:\s+42501:.*masked by rule ssns/);
    expect(moved.stdout).not.toContain(SSN);
  });

  it('pg driver, extended protocol: an aliased column is masked too', async () => {
    const c = new pg.Client(h.clientConfig(await h.credential()));
    await c.connect();
    try {
      const r = await c.query('SELECT ssn AS tax_id, name AS who FROM customers WHERE id = $1', [1]);
      expect(r.rows).toEqual([{ tax_id: '[REDACTED]', who: 'Ada' }]);
    } finally {
      await c.end();
    }
  });
});

describe('masked columns cannot be computed on, taken as a whole row or copied', () => {
  it.each([
    ['a function over it', 'SELECT upper(ssn) FROM customers', 'ssns'],
    ['a concatenation', "SELECT ssn || '' FROM customers", 'ssns'],
    ['the whole row as JSON', 'SELECT row_to_json(c) FROM customers c', 'ssns'],
    ['an expression over a renamed column', 'SELECT upper(x) FROM (SELECT card_number AS x FROM customers) s', 'cards'],
    ['a copy into a new table', 'CREATE TABLE leak AS SELECT ssn FROM customers', 'ssns'],
    ['a copy into another column', 'UPDATE customers SET name = ssn', 'ssns'],
  ])('psql: %s is refused by the gateway (42501, the masking rule), and nothing changed', async (_name, sql, rule) => {
    const r = await psql(sql);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERROR:\s+42501:/);
    expect(r.stderr).toContain(`masked by rule ${rule}`);
    expect(r.stdout).not.toContain(SSN);
    const row = (await h.targetQuery('SELECT name, to_regclass($1) IS NULL AS no_leak_table FROM customers', ['leak'])).rows[0];
    expect(row).toEqual({ name: 'Ada', no_leak_table: true });
  });

  it('filters on a masked column and plain reads still work', async () => {
    const r = await psql(`SELECT id, ssn FROM customers WHERE ssn = '${SSN}' ORDER BY ssn`);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('1|[REDACTED]');
  });
});

describe('functions that read whole tables or run SQL given as text', () => {
  it.each([
    ['table_to_xml by name', "SELECT table_to_xml('customers', true, true, '')", 'ssns'],
    ['table_to_xml by a regclass cast, through xpath', "SELECT xpath('//ssn/text()', table_to_xml('public.customers'::regclass, true, true, ''))", 'ssns'],
    ['table_to_xmlschema and table_to_xml together', "SELECT table_to_xml_and_xmlschema('customers', true, true, '')", 'ssns'],
    ['query_to_xml of a masked column', "SELECT query_to_xml('select ssn from customers', true, true, '')", 'ssns'],
    ['query_to_xml of a whole row', "SELECT query_to_xml('select * from customers', true, true, '')", 'ssns'],
    ['schema_to_xml', "SELECT schema_to_xml('public', true, true, '')", 'ssns'],
    ['database_to_xml', "SELECT database_to_xml(true, true, '')", 'ssns'],
    ['ts_rewrite running a query string', "SELECT ts_rewrite('a'::tsquery, 'SELECT replace(ssn, ''-'', '''')::tsquery, ''b''::tsquery FROM customers')", 'ssns'],
    ['ts_stat over a masked column', "SELECT * FROM ts_stat('SELECT to_tsvector(''simple'', ssn) FROM customers')", 'ssns'],
    ['a row cast to text', 'SELECT c::text FROM customers c', 'ssns'],
    ['to_jsonb of t.*', 'SELECT to_jsonb(c.*) FROM customers c', 'ssns'],
  ])('psql: %s is refused naming the masking rule', async (_name, sql, rule) => {
    const r = await psql(sql);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERROR:\s+42501:/);
    expect(r.stderr).toContain(`masked by rule ${rule}`);
    expect(r.stdout + r.stderr).not.toContain('6789');
  });

  it('pg driver: a cursor read through cursor_to_xml is refused (the cursor may read anything); its FETCH is masked', async () => {
    const c = new pg.Client(h.clientConfig(await h.credential()));
    await c.connect();
    try {
      await c.query('BEGIN');
      await c.query('DECLARE cur CURSOR FOR SELECT ssn FROM customers');
      await expect(c.query("SELECT cursor_to_xml('cur', 10, true, true, '')")).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('masked by rule ssns') });
      await c.query('ROLLBACK');
      await c.query('BEGIN');
      await c.query('DECLARE cur CURSOR FOR SELECT ssn FROM customers');
      const r = await c.query('FETCH ALL FROM cur');
      expect(r.rows).toEqual([{ ssn: '[REDACTED]' }]);
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
  });

  it('psql: query_to_xml of unmasked columns still runs', async () => {
    const r = await psql("SELECT query_to_xml('select id, name from customers', true, true, '')::text");
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('<name>Ada</name>');
  });
});

describe('filters may hand masked columns only to side-effect-free built-ins', () => {
  it.each([
    ['a user function that raises a notice and writes a row', 'SELECT id FROM customers WHERE leak(ssn)', 'ssns'],
    ['a user function over an expression of it', "SELECT id FROM customers WHERE leak(lower(ssn) || '')", 'ssns'],
    ['set_config of the value', "SELECT id FROM customers WHERE set_config('app.leak', ssn, false) <> ''", 'ssns'],
    ['pg_notify of the value', "SELECT id FROM customers WHERE pg_notify('leak', email) IS NULL", 'emails'],
    ['a large object made from the value', "SELECT id FROM customers WHERE lo_from_bytea(0, convert_to(ssn, 'UTF8')) > 0", 'ssns'],
    ['a user function in a DELETE filter', 'DELETE FROM customers WHERE id = 2 AND leak(ssn)', 'ssns'],
  ])('psql: %s is refused, and nothing was written', async (_name, sql, rule) => {
    const r = await psql(`${sql}; SELECT current_setting('app.leak', true)`);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERROR:\s+42501:/);
    expect(r.stderr).toContain(`masked by rule ${rule}`);
    expect(r.stdout + r.stderr).not.toContain('6789');
    expect(r.stdout + r.stderr).not.toContain('lovelace');
    const sink = await h.targetQuery('SELECT (SELECT count(*)::int FROM sink) AS sink, (SELECT count(*)::int FROM pg_largeobject_metadata) AS lobs');
    expect(sink.rows[0]).toEqual({ sink: 0, lobs: 0 });
  });

  it('pg driver: a LISTENing client gets no notification carrying a masked value', async () => {
    const c = new pg.Client(h.clientConfig(await h.credential()));
    await c.connect();
    const got: string[] = [];
    c.on('notification', (n) => got.push(n.payload ?? ''));
    try {
      await c.query('LISTEN leak');
      await expect(c.query("SELECT id FROM customers WHERE pg_notify('leak', ssn) IS NULL")).rejects.toMatchObject({ code: '42501' });
      await c.query('SELECT 1');
      expect(got).toEqual([]);
    } finally {
      await c.end();
    }
  });

  it('psql: DELETE … USING a temporary table joined on a masked column runs (a filter, not an output)', async () => {
    await h.targetQuery("INSERT INTO customers VALUES (7, 'Temp', '000-00-0000', NULL, 'gone@example.com') ON CONFLICT DO NOTHING");
    const r = await psql(
      "CREATE TEMP TABLE tmp (email text); INSERT INTO tmp VALUES ('gone@example.com'); DELETE FROM customers USING tmp WHERE customers.email = tmp.email",
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const left = await h.targetQuery('SELECT count(*)::int AS n FROM customers WHERE id = 7');
    expect(left.rows[0]).toEqual({ n: 0 });
  });

  it('psql: built-in functions in a filter still work', async () => {
    const r = await psql(`SELECT id FROM customers WHERE lower(email) LIKE '%@example.com' AND substring(ssn FROM 1 FOR 3) = '123'`);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('1');
  });
});

describe('error and notice texts leave through masking', () => {
  const noValue = (text: string) => {
    expect(text).not.toContain('6789');
    expect(text).not.toContain('lovelace');
  };

  it.each([
    ['a failing cast of a masked column in a filter', 'SELECT id FROM customers WHERE ssn::int > 0', '22P02', 'ssns'],
    ['a failing cast in ORDER BY', 'SELECT id FROM customers ORDER BY ssn::numeric', '22P02', 'ssns'],
    ['a failing cast inside a CTE', 'WITH x AS (SELECT id FROM customers WHERE card_number::bigint > 0) SELECT id FROM x', '22P02', 'cards'],
    ['a failing cast beside a star (every column of customers counts)', "SELECT * FROM customers WHERE name = 'Ada' AND card_number::bigint > 0", '22P02', 'ssns'],
    ['ALTER COLUMN … TYPE converting every value', 'ALTER TABLE customers ALTER COLUMN ssn TYPE int USING ssn::int', '22P02', 'ssns'],
  ])('psql: %s fails with its SQLSTATE and no value', async (_name, sql, code, rule) => {
    const r = await psql(sql);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`ERROR:\\s+${code}:`));
    expect(r.stderr).toContain(`masked by rule "${rule}"`);
    expect(r.stderr).not.toMatch(/DETAIL|CONTEXT/);
    noValue(r.stdout + r.stderr);
  });

  it('psql: a unique violation on a masked column keeps 23505 and the constraint, not the other row\'s value', async () => {
    await h.targetQuery("INSERT INTO customers VALUES (8, 'Twin', '000-00-0000', NULL, 'ADA.LOVELACE@example.com')");
    try {
      const r = await psql('UPDATE customers SET email = lower(email) WHERE id = 8');
      expect(r.stderr).toMatch(/ERROR:\s+23505:/);
      expect(r.stderr).toContain('customers_email_key');
      noValue(r.stdout + r.stderr);
    } finally {
      await h.targetQuery('DELETE FROM customers WHERE id = 8');
    }
  });

  it('pg driver: the error keeps its code and constraint fields, message generic, detail and where withheld', async () => {
    await h.targetQuery("INSERT INTO customers VALUES (8, 'Twin', '000-00-0000', NULL, 'ADA.LOVELACE@example.com')");
    const c = new pg.Client(h.clientConfig(await h.credential()));
    await c.connect();
    try {
      const err = await c.query('UPDATE customers SET email = lower(email) WHERE id = $1', [8]).catch((e: unknown) => e as pg.DatabaseError);
      expect(err).toMatchObject({ code: '23505', constraint: 'customers_email_key', table: 'customers', detail: undefined, where: undefined });
      noValue(JSON.stringify(err) + (err as Error).message);
    } finally {
      await c.end();
      await h.targetQuery('DELETE FROM customers WHERE id = 8');
    }
  });

  it('pg driver: a named prepared statement executed again (Bind only) still has its error withheld', async () => {
    const c = new pg.Client(h.clientConfig(await h.credential()));
    await c.connect();
    try {
      for (let i = 0; i < 2; i++) {
        const err = await c.query({ name: 'by_ssn', text: 'SELECT id FROM customers WHERE ssn::int = $1', values: [1] }).catch((e: unknown) => e as pg.DatabaseError);
        expect(err).toMatchObject({ code: '22P02' });
        noValue((err as Error).message);
      }
    } finally {
      await c.end();
    }
  });

  it('pg driver: SQL-level PREPARE … EXECUTE and DECLARE … FETCH have their errors withheld', async () => {
    const c = new pg.Client(h.clientConfig(await h.credential()));
    await c.connect();
    try {
      await c.query('PREPARE p AS SELECT id FROM customers WHERE ssn::int = 1');
      const e1 = await c.query('EXECUTE p').catch((e: unknown) => e as pg.DatabaseError);
      expect(e1).toMatchObject({ code: '22P02' });
      noValue((e1 as Error).message);
      await c.query('BEGIN');
      await c.query('DECLARE cur CURSOR FOR SELECT id FROM customers WHERE card_number::bigint > 0');
      const e2 = await c.query('FETCH ALL FROM cur').catch((e: unknown) => e as pg.DatabaseError);
      expect(e2).toMatchObject({ code: '22P02' });
      expect((e2 as Error).message).not.toContain('4111');
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
  });

  it('pg driver: a notice of a statement that names no masked column goes through the content detectors', async () => {
    const c = new pg.Client(h.clientConfig(await h.credential()));
    await c.connect();
    const notices: pg.NoticeMessage[] = [];
    c.on('notice', (n) => notices.push(n));
    try {
      await c.query('SELECT noisy()');
      expect(notices).toHaveLength(1);
      expect(notices[0]!.message).toBe('first customer: [REDACTED]');
      expect(notices[0]!.detail).toBe('ssn [REDACTED]');
      // naming a masked column withholds the notice's text whole
      await c.query("SELECT noisy() FROM customers WHERE ssn <> ''");
      expect(notices[1]!.message).toContain('masked by rule "ssns"');
      expect(notices[1]!.detail).toBeUndefined();
      noValue(JSON.stringify(notices));
    } finally {
      await c.end();
    }
  });

  it('psql: errors of statements that touch no masked column keep their text', async () => {
    const r = await psql('SELECT name::int FROM customers');
    expect(r.stderr).toContain('invalid input syntax for type integer: "Ada"');
  });
});
