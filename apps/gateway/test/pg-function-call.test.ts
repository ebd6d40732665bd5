import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import {
  BackendMessageType as B,
  PgFramer,
  decodeErrorResponse,
  encodeFunctionCall,
  encodePassword,
  encodeQuery,
  encodeStartupMessage,
  encodeTerminate,
  type PgFrame,
} from '@portcullis/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_ADMIN_URL, readSessionEvents, startHarness, type Harness } from './support/harness.js';
import { killAllPrograms, runProgram } from './support/run-program.js';

/**
 * The function-call protocol ('F', libpq's PQfn) through the gateway: large objects (psql's
 * \lo_import / \lo_export, pg_dump and pg_restore of a database holding one) work under a policy that
 * allows them, and a call is decided as the `SELECT schema.fn(…)` it amounts to: a guarded function
 * is refused by its rule whether called in SQL or by OID.
 */

const policy = {
  name: 'default',
  guardrails: [
    { name: 'no-destructive-ddl', action: 'block', match: { statements: ['DROP', 'TRUNCATE', 'ALTER', 'GRANT', 'REVOKE', 'CREATE ROLE', 'ALTER ROLE'] } },
    { name: 'no-session-killing', action: 'block', match: { functions: ['pg_terminate_backend', 'pg_cancel_backend'] } },
    { name: 'keep-large-objects', action: 'block', match: { functions: ['lo_unlink'] } },
  ],
  // pg_dump's first statement (set_config by a name read from pg_settings) under dynamicSql: block is
  // issue 18 §4's first bullet, not this file's subject
  dynamicSql: 'allow',
  masking: [
    { name: 'emails', columns: ['email'], strategy: 'partial' },
    { name: 'pii', detectors: ['CREDIT_CARD', 'US_SSN'], strategy: 'redact' },
  ],
};

/** pg_restore runs DDL: the restore target's policy keeps only the function guardrails */
const restorePolicy = { ...policy, name: 'restore', guardrails: policy.guardrails.filter((g) => g.name !== 'no-destructive-ddl') };

let h: Harness;
let dir: string;
const restoreDb = `gw_lo_restore_${randomBytes(4).toString('hex')}`;
beforeAll(async () => {
  h = await startHarness({
    policies: [
      { name: 'default', version: 1, document: policy },
      { name: 'restore', version: 1, document: restorePolicy },
    ],
    connection: { policy: 'default' },
    setupSql: `CREATE TABLE docs (id int primary key, email text, body oid);`,
  });
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${restoreDb}`);
  await admin.end();
  const target = h.snapshotInput.connections[0]!;
  await h.putSnapshot({ connections: [target, { ...target, name: 'restore', database: restoreDb, policy: 'restore' }] });
  dir = mkdtempSync(join(tmpdir(), 'pg-function-call-'));
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

async function psql(args: string[], connection = 'target') {
  const token = await h.credential({ cn: connection });
  return runProgram('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-d', h.connectionUri(token, connection), ...args], { timeoutMs: 30_000 });
}

const directUri = (db: string) => PG_ADMIN_URL.replace(/\/[^/?]*(\?|$)/, `/${db}$1`);

/** 300 KiB of every byte value (several lo_read/lo_write calls of psql's 8 KiB buffer). */
const content = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(300 * 1024)]);

describe('function calls (F) through the gateway, under a policy', () => {
  let oid = 0;

  it('psql \\lo_import and \\lo_export carry a large object byte for byte', async () => {
    const src = join(dir, 'in.bin');
    writeFileSync(src, content);
    const imp = await psql(['-c', `\\lo_import ${src}`]);
    expect(imp.stderr).toBe('');
    expect(imp.code).toBe(0);
    oid = Number(/lo_import (\d+)/.exec(imp.stdout)?.[1]);
    expect(oid).toBeGreaterThan(0);
    // what landed upstream is the file
    const direct = await h.targetQuery('select lo_get($1::oid) as b', [oid]);
    expect(Buffer.compare(direct.rows[0].b as Buffer, content)).toBe(0);
    await h.targetQuery(`insert into docs values (1, 'ada@example.com', ${oid})`);

    const out = join(dir, 'out.bin');
    const exp = await psql(['-c', `\\lo_export ${oid} ${out}`]);
    expect(exp.stderr).toBe('');
    expect(exp.code).toBe(0);
    expect(Buffer.compare(readFileSync(out), content)).toBe(0);
  });

  it('each call is recorded as the statement it amounts to, with its decision', async () => {
    const events = await readSessionEvents(h, undefined, 1, 5000);
    // a call that ran is one `statement` event (query, decision and result together), like a simple Query
    const calls = events.filter((e) => (e.type === 'statement' || e.type === 'query') && (e.data as { protocol?: string }).protocol === 'function-call');
    expect(calls.some((e) => e.type === 'statement' && (e.data as { action?: string }).action === 'allow')).toBe(true);
    const sqls = new Set(calls.map((e) => (e.data as { sql: string }).sql));
    expect(sqls).toContain('SELECT "pg_catalog"."lo_open"($1, $2)');
    expect(sqls).toContain('SELECT "pg_catalog"."lowrite"($1, $2)');
    expect(sqls).toContain('SELECT "pg_catalog"."loread"($1, $2)');
  });

  it('pg_dump of a database holding a large object, and pg_restore of it, through the gateway', async () => {
    const file = join(dir, 'lo.dump');
    const dump = await runProgram('pg_dump', ['-Fc', '--no-owner', '-f', file, '-d', h.connectionUri(await h.credential())], { timeoutMs: 60_000 });
    expect(dump.stderr).toBe('');
    expect(dump.code).toBe(0);
    const restore = await runProgram('pg_restore', ['--no-owner', '-d', h.connectionUri(await h.credential({ cn: 'restore' }), 'restore'), file], { timeoutMs: 60_000 });
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    const c = new pg.Client({ connectionString: directUri(restoreDb) });
    await c.connect();
    try {
      const r = await c.query('select lo_get(body) as b, email from docs where id = 1');
      expect(Buffer.compare(r.rows[0].b as Buffer, content)).toBe(0);
      // the dump went through the policy's masking like any other read
      expect(r.rows[0].email).toBe('a**@example.com');
    } finally {
      await c.end();
    }
    // the plain dump carries it too (as lo_open/lowrite calls in hex)
    const plain = await runProgram('pg_dump', ['--no-owner', '-d', h.connectionUri(await h.credential())], { timeoutMs: 60_000 });
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toContain(`SELECT pg_catalog.lo_open('${oid}', 131072);`);
  });

  it('a guarded function called by OID is refused by its rule (psql \\lo_unlink); the session goes on', async () => {
    const r = await psql(['-c', `\\lo_unlink ${oid}`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('statement blocked by rule "keep-large-objects"');
    // the same rule as in SQL
    const sql = await psql(['-c', `select lo_unlink(${oid})`]);
    expect(sql.stderr).toContain('statement blocked by rule "keep-large-objects"');
    expect((await h.targetQuery('select count(*)::int n from pg_largeobject_metadata where oid = $1', [oid])).rows[0].n).toBe(1);
  });

  it.each([
    { name: 'pg_terminate_backend by OID → 42501 naming the rule', fn: 'pg_catalog.pg_terminate_backend(integer,bigint)', args: [int4(1), int8(0)], code: '42501', text: 'statement blocked by rule "no-session-killing"' },
    { name: 'pg_cancel_backend by OID → 42501 naming the rule', fn: 'pg_catalog.pg_cancel_backend(integer)', args: [int4(1)], code: '42501', text: 'statement blocked by rule "no-session-killing"' },
    { name: 'an OID no function has → 42883', fn: null, args: [], code: '42883', text: 'function with OID 4000000000 does not exist' },
  ])('raw F message: $name; the next statement works', async ({ fn, args, code, text }) => {
    const oidOf = fn ? Number((await h.targetQuery(`select '${fn}'::regprocedure::oid::int8 as o`)).rows[0].o) : 4_000_000_000;
    const got = await rawFunctionCall(oidOf, args);
    expect(got.error?.code).toBe(code);
    expect(got.error?.message).toContain(text);
    expect(got.afterwards).toBe('1');
  });
});

describe('the result of a function call is masked as the same SELECT fn(…) column would be', () => {
  it('a text result passes the policy\'s detectors (a card number is redacted)', async () => {
    const textcat = Number((await h.targetQuery(`select 'pg_catalog.textcat(text,text)'::regprocedure::oid::int8 as o`)).rows[0].o);
    const got = await rawFunctionCall(textcat, [Buffer.from('card 4111 1111 '), Buffer.from('1111 1111 here')], 0);
    expect(got.error).toBeNull();
    expect(got.value).not.toContain('4111');
    expect(got.value).toMatch(/^card .*here$/);
    expect(got.afterwards).toBe('1');
    const direct = await psql(['-At', '-c', `select textcat('card 4111 1111 ', '1111 1111 here')`]);
    expect(direct.stdout.trim()).toBe(got.value);
  });
});

function int4(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}
function int8(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(n));
  return b;
}

/**
 * No driver of this machine sends F for an arbitrary function: a raw client does. Logs in with a
 * gateway credential, sends one FunctionCall (binary arguments), then `select 1`.
 */
async function rawFunctionCall(oid: number, args: Buffer[], format = 1): Promise<{ error: { code: string; message: string } | null; value: string | null; afterwards: string | null }> {
  const token = await h.credential();
  const s = connect({ host: '127.0.0.1', port: h.gateway.pgPort });
  const framer = new PgFramer({ startup: false, from: 'server' });
  const frames: PgFrame[] = [];
  let wake: (() => void) | null = null;
  s.on('data', (b: Buffer) => {
    framer.push(b);
    for (let f = framer.next(); f; f = framer.next()) frames.push(f);
    wake?.();
  });
  const until = async (type: number): Promise<PgFrame[]> => {
    for (;;) {
      const i = frames.findIndex((f) => f.type === type);
      if (i >= 0) return frames.splice(0, i + 1);
      await new Promise<void>((r) => (wake = r));
    }
  };
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(encodeStartupMessage({ user: 'carol', database: h.connectionName }));
  await until(B.Authentication);
  s.write(encodePassword(token));
  await until(B.ReadyForQuery);
  s.write(encodeFunctionCall({ functionOid: oid, argFormats: [format], args, resultFormat: format }));
  const answer = await until(B.ReadyForQuery);
  const e = answer.find((f) => f.type === B.ErrorResponse);
  const v = answer.find((f) => f.type === B.FunctionCallResponse);
  s.write(encodeQuery('select 1'));
  const next = await until(B.ReadyForQuery);
  const row = next.find((f) => f.type === B.DataRow);
  s.end(encodeTerminate());
  return {
    error: e ? (({ code, message }) => ({ code, message }))(decodeErrorResponse(e.payload)) : null,
    value: v && v.payload.readInt32BE(0) >= 0 ? v.payload.subarray(4).toString() : null,
    afterwards: row ? row.payload.subarray(6).toString() : null,
  };
}
