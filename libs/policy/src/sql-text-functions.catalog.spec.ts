import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILTIN_OPERATORS } from './builtin-operators.js';
import { SQL_TEXT_FUNCTIONS, sqlTextFunction } from './sql-text-functions.js';

/**
 * Enumerates the functions of the real Postgres the tests run against — core and every extension it
 * can install — and fails when one that takes SQL, a query or a table by name is neither in
 * SQL_TEXT_FUNCTIONS nor reviewed below as not running SQL. A new Postgres or extension version that
 * adds such a function makes this test fail until someone looks at it. The same catalog checks that
 * BUILTIN_OPERATORS (builtin-operators.ts) names every operator of pg_catalog and of the extensions.
 */

/** Looked at and found not to run SQL from their arguments; the reason says why. */
const REVIEWED_NOT_RUNNING_SQL: Record<string, string> = {
  to_tsquery: 'parses text-search query syntax, not SQL',
  plainto_tsquery: 'parses text-search query syntax, not SQL',
  phraseto_tsquery: 'parses text-search query syntax, not SQL',
  websearch_to_tsquery: 'parses text-search query syntax, not SQL',
  dblink_connect: 'opens a connection; SQL goes through dblink/dblink_exec/dblink_open/dblink_send_query',
  dblink_connect_u: 'opens a connection; SQL goes through dblink/dblink_exec/dblink_open/dblink_send_query',
  dblink_disconnect: 'closes a connection',
  dblink_fetch: 'fetches from a cursor opened by dblink_open, whose SQL was analysed there',
  dblink_close: 'closes a cursor opened by dblink_open',
  dblink_get_result: 'reads the result of dblink_send_query, whose SQL was analysed there',
  dblink_is_busy: 'connection state',
  dblink_cancel_query: 'cancels the remote query of its own connection',
  dblink_error_message: 'connection state',
  dblink_get_notify: 'reads notifications',
  dblink_get_pkey: 'reads the catalog for a relation name; no SQL text',
  dblink_build_sql_insert: 'returns SQL text without running it',
  dblink_build_sql_update: 'returns SQL text without running it',
  dblink_build_sql_delete: 'returns SQL text without running it',
  dblink_current_query: 'returns the current query text',
  dblink_fdw_validator: 'validates FDW options',
  postgresql_fdw_validator: 'validates FDW options',
};

/** Names or C symbols that suggest running SQL or reading a relation by name. */
const SUSPECT = '(query|sql|exec|_to_xml|crosstab|connectby|xpath_table|dblink|spi|command|cmd|statement|stmt|run_)';
/** Argument types SQL or a relation name can be passed as. */
const TEXTUAL = "array['text'::regtype, 'varchar'::regtype, 'name'::regtype, 'regclass'::regtype, 'refcursor'::regtype, 'bpchar'::regtype]::oid[]";

const server = (process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/portcullis_test').replace(/\/[^/?]*(\?.*)?$/, '');
const dbName = `policy_catalog_${randomUUID().slice(0, 8)}`;
let client: pg.Client;

async function withClient<T>(url: string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  await withClient(`${server}/postgres`, (c) => c.query(`CREATE DATABASE ${dbName}`));
  client = new pg.Client({ connectionString: `${server}/${dbName}` });
  await client.connect();
  // Every extension this server can install, so their functions are enumerated too; some cannot be
  // created here (they need shared_preload_libraries or another library) — those are skipped.
  const { rows } = await client.query<{ name: string }>('SELECT name FROM pg_available_extensions WHERE installed_version IS NULL ORDER BY name');
  for (const { name } of rows) {
    await client.query(`CREATE EXTENSION IF NOT EXISTS "${name}" CASCADE`).catch(() => undefined);
  }
}, 120_000);

afterAll(async () => {
  await client?.end();
  await withClient(`${server}/postgres`, (c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
});

interface Fn { schema: string; name: string; symbol: string; language: string; signature: string }

async function functions(where: string): Promise<Fn[]> {
  const { rows } = await client.query<Fn>(`
    SELECT n.nspname AS schema, p.proname AS name, p.prosrc AS symbol, l.lanname AS language, p.oid::regprocedure::text AS signature
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
     WHERE p.prokind IN ('f', 'p') AND (${where})
     ORDER BY 1, 2, 5`);
  return rows;
}

const listed = (f: Fn) => sqlTextFunction({ schema: f.schema, name: f.name }) !== undefined;
/** GIN support functions (gin_extract_query_<type>) take an index key and internal state, never SQL. */
const GIN_SUPPORT = /^gin_extract_query_/;
const reviewed = (f: Fn) => REVIEWED_NOT_RUNNING_SQL[f.name] !== undefined || GIN_SUPPORT.test(f.name);

describe('functions that run SQL given as text (real catalog)', () => {
  it('installed the extensions that have such functions', async () => {
    const { rows } = await client.query<{ extname: string }>('SELECT extname FROM pg_extension');
    const installed = rows.map((r) => r.extname);
    // the contrib ones this Postgres ships; a server without them would make the test below vacuous
    expect(installed).toEqual(expect.arrayContaining(['dblink', 'tablefunc', 'xml2']));
  });

  it('lists every function with a text argument named like a query or SQL', async () => {
    const found = await functions(`p.proargnames IS NOT NULL AND EXISTS (
      SELECT 1 FROM unnest(p.proargnames, coalesce(p.proargmodes, array_fill('i'::"char", array[cardinality(p.proargnames)])),
                           coalesce(p.proallargtypes, p.proargtypes::oid[])) AS a(name, mode, type)
       WHERE a.mode IN ('i', 'b', 'v') AND a.name ~* '(query|sql|command|statement|stmt)' AND a.type = ANY(${TEXTUAL}))`);
    expect(found.length).toBeGreaterThan(0);
    expect(found.filter((f) => !listed(f) && !reviewed(f)).map((f) => f.signature)).toEqual([]);
  });

  it('lists every function whose name or C symbol suggests SQL or a relation, or has reviewed it', async () => {
    const found = await functions(`p.proargtypes::oid[] && ${TEXTUAL} AND (p.proname || ' ' || CASE WHEN l.lanname IN ('c', 'internal') THEN p.prosrc ELSE '' END) ~* '${SUSPECT}'`);
    expect(found.map((f) => f.name)).toEqual(expect.arrayContaining(['query_to_xml', 'ts_rewrite', 'table_to_xml', 'crosstab', 'dblink_exec']));
    expect(found.filter((f) => !listed(f) && !reviewed(f)).map((f) => f.signature)).toEqual([]);
  });

  it('lists every function implemented by the same C function as a listed one (aliases such as crosstab2)', async () => {
    const all = await functions("l.lanname IN ('c', 'internal')");
    const symbols = new Set(all.filter(listed).map((f) => f.symbol));
    const aliases = all.filter((f) => symbols.has(f.symbol) && !listed(f));
    // ts_rewrite(tsquery, tsquery, tsquery) shares no symbol with the text form; nothing else may be left
    expect(aliases.map((f) => f.signature)).toEqual([]);
  });

  it('lists every SQL or PL/pgSQL function whose body calls a listed one', async () => {
    const names = [...new Set(SQL_TEXT_FUNCTIONS.map((f) => f.name))].join('|');
    const wrappers = await functions(`l.lanname IN ('sql', 'plpgsql') AND p.prosrc ~* '\\m(${names})\\s*\\('`);
    expect(wrappers.filter((f) => !listed(f)).map((f) => f.signature)).toEqual([]);
  });

  it('names only functions that exist, for the core ones and the installed extensions', async () => {
    const { rows } = await client.query<{ extname: string }>('SELECT extname FROM pg_extension');
    const installed = new Set(['core', ...rows.map((r) => r.extname)]);
    const names = (await functions('true')).map((f) => f.name);
    const missing = SQL_TEXT_FUNCTIONS.filter((f) => installed.has(f.source) && !names.includes(f.name)).map((f) => f.name);
    expect(missing).toEqual([]);
  });
});

describe('built-in operators (real catalog)', () => {
  it('knows every operator name of pg_catalog and of every installable extension', async () => {
    const { rows } = await client.query<{ name: string }>(`
      SELECT DISTINCT o.oprname AS name FROM pg_operator o
       WHERE o.oprnamespace = 'pg_catalog'::regnamespace
          OR EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_operator'::regclass AND d.objid = o.oid AND d.deptype = 'e')`);
    expect(rows.length).toBeGreaterThan(50);
    expect(rows.map((r) => r.name).filter((n) => !BUILTIN_OPERATORS.has(n))).toEqual([]);
  });
});
