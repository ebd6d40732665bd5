/**
 * The codec against a real server: the local Postgres (127.0.0.1:5432, trust, user postgres).
 * Our encoders speak, the server answers, our framer and decoders read its real bytes.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { collect, PgWireClient } from '../../../../test/support/pg-wire-client.js';
import { decodeBackendMessage, decodeDataRow } from './backend.js';
import { PROTOCOL_VERSION_3_0 } from './codes.js';
import { PgFramer, type PgFrame } from './framer.js';
import * as fe from './frontend.js';

const HOST = '127.0.0.1';
const PORT = 5432;
const DATABASE = new URL(process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/portcullis_test').pathname.slice(1);

const clients: PgWireClient[] = [];
async function session(): Promise<PgWireClient> {
  const c = await PgWireClient.connect({ host: HOST, port: PORT });
  clients.push(c);
  await c.startup({ user: 'postgres', database: DATABASE, application_name: 'portcullis-codec-test' });
  return c;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

const text = (b: Buffer | null | undefined) => (b == null ? b : b.toString('utf8'));

describe('codec ↔ local Postgres', () => {
  it('startup: AuthenticationOk, ParameterStatus, BackendKeyData, ReadyForQuery', async () => {
    const c = await PgWireClient.connect({ host: HOST, port: PORT });
    clients.push(c);
    const msgs = await c.startup({ user: 'postgres', database: DATABASE });
    expect(msgs[0]).toMatchObject({ kind: 'Authentication', auth: 'Ok' });
    const status = Object.fromEntries(msgs.flatMap((m) => (m.kind === 'ParameterStatus' ? [[m.name, m.value]] : [])));
    expect(status.client_encoding).toBe('UTF8');
    expect(status.server_version).toMatch(/^\d+/);
    const key = msgs.find((m) => m.kind === 'BackendKeyData');
    expect(key).toMatchObject({ kind: 'BackendKeyData', pid: expect.any(Number) });
    expect(msgs.at(-1)).toMatchObject({ kind: 'ReadyForQuery', status: 'I' });
  });

  it('simple query with several statements, NULLs and UTF-8', async () => {
    const c = await session();
    const r = await c.query("select 1 as one, null::text as nothing, 'ünï€😀'::text as u; select 2 as two");
    expect(r.error).toBeNull();
    expect(r.tags).toEqual(['SELECT 1', 'SELECT 1']);
    expect(r.rows.map((row) => row.map(text))).toEqual([['1', null, 'ünï€😀'], ['2']]);
    expect(r.fields).toEqual([expect.objectContaining({ name: 'two', typeOid: 23, typeSize: 4, format: 0 })]);
    const first = r.messages.find((m) => m.kind === 'RowDescription');
    expect(first).toMatchObject({ fields: [{ name: 'one', typeOid: 23 }, { name: 'nothing', typeOid: 25, typeSize: -1 }, { name: 'u', typeOid: 25 }] });
  });

  it('empty query → EmptyQueryResponse', async () => {
    const c = await session();
    const r = await c.query('  ');
    expect(r.messages.map((m) => m.kind)).toEqual(['EmptyQueryResponse', 'ReadyForQuery']);
  });

  it('errors and notices decode with their fields; the transaction status follows', async () => {
    const c = await session();
    const r = await c.query('select * from portcullis_no_such_table');
    expect(r.error).toMatchObject({ severity: 'ERROR', severityNonLocalized: 'ERROR', code: '42P01', position: '15', message: expect.stringContaining('does not exist') });
    expect(r.error?.fields.F).toBeTypeOf('string');
    await c.query('begin');
    const failed = await c.query('select 1/0');
    expect(failed.error?.code).toBe('22012');
    expect(failed.messages.at(-1)).toMatchObject({ kind: 'ReadyForQuery', status: 'E' });
    await c.query('rollback');
    const n = await c.query("do $$ begin raise notice 'hello %', 42 using hint = 'a hint'; end $$");
    expect(n.notices).toEqual([expect.objectContaining({ severity: 'NOTICE', code: '00000', message: 'hello 42', hint: 'a hint' })]);
  });

  it('extended protocol: Parse, Describe, Bind (text + binary), Execute with a row limit, Close, Sync', async () => {
    const c = await session();
    const stmt = `s_${randomBytes(4).toString('hex')}`;
    c.send(
      Buffer.concat([
        fe.encodeParse({ name: stmt, query: 'select g, $1::text || g as label from generate_series(1, $2::int) g', paramTypes: [25, 0] }),
        fe.encodeDescribe('statement', stmt),
        fe.encodeBind({ statement: stmt, paramFormats: [0, 1], params: ['row-', Buffer.from([0, 0, 0, 3])], resultFormats: [1, 0] }),
        fe.encodeExecute('', 2),
        fe.encodeSync(),
      ]),
    );
    const msgs = await c.until('ReadyForQuery');
    expect(msgs.map((m) => m.kind)).toEqual(['ParseComplete', 'ParameterDescription', 'RowDescription', 'BindComplete', 'DataRow', 'DataRow', 'PortalSuspended', 'ReadyForQuery']);
    expect(msgs[1]).toMatchObject({ types: [25, 23] });
    const rows = msgs.flatMap((m) => (m.kind === 'DataRow' ? [m.values] : []));
    expect(rows.map(([g, label]) => [g?.readInt32BE(0), text(label)])).toEqual([
      [1, 'row-1'],
      [2, 'row-2'],
    ]);
    c.send(Buffer.concat([fe.encodeBind({ portal: 'p1', statement: stmt, params: ['x', '1'] }), fe.encodeDescribe('portal', 'p1'), fe.encodeExecute('p1'), fe.encodeClose('portal', 'p1'), fe.encodeClose('statement', stmt), fe.encodeSync()]));
    const more = await c.until('ReadyForQuery');
    expect(more.map((m) => m.kind)).toEqual(['BindComplete', 'RowDescription', 'DataRow', 'CommandComplete', 'CloseComplete', 'CloseComplete', 'ReadyForQuery']);
    expect(more[3]).toMatchObject({ tag: 'SELECT 1' });
    c.send(Buffer.concat([fe.encodeParse({ query: 'set search_path = public' }), fe.encodeBind({}), fe.encodeDescribe('portal'), fe.encodeExecute(), fe.encodeFlush(), fe.encodeSync()]));
    expect((await c.until('ReadyForQuery')).map((m) => m.kind)).toEqual(['ParseComplete', 'BindComplete', 'NoData', 'CommandComplete', 'ReadyForQuery']);
  });

  it('COPY out and COPY in', async () => {
    const c = await session();
    const out = await c.query('copy (select g, g * 2 from generate_series(1, 3) g) to stdout');
    expect(out.messages.map((m) => m.kind)).toEqual(['CopyOutResponse', 'CopyData', 'CopyData', 'CopyData', 'CopyDone', 'CommandComplete', 'ReadyForQuery']);
    expect(out.messages[0]).toMatchObject({ format: 0, columnFormats: [0, 0] });
    expect(out.messages.flatMap((m) => (m.kind === 'CopyData' ? [m.data.toString()] : [])).join('')).toBe('1\t2\n2\t4\n3\t6\n');
    expect(out.tags).toEqual(['COPY 3']);

    await c.query('create temp table codec_copy_in (id int, name text)');
    c.send(fe.encodeQuery('copy codec_copy_in from stdin'));
    expect((await c.next()).kind).toBe('CopyInResponse');
    c.send(Buffer.concat([fe.encodeCopyData('1\talice\n'), fe.encodeCopyData('2\t'), fe.encodeCopyData('bob\n'), fe.encodeCopyDone()]));
    expect(collect(await c.until('ReadyForQuery')).tags).toEqual(['COPY 2']);
    c.send(fe.encodeQuery('copy codec_copy_in from stdin'));
    await c.next();
    c.send(fe.encodeCopyFail('client changed its mind'));
    const failed = collect(await c.until('ReadyForQuery'));
    expect(failed.error).toMatchObject({ code: '57014', message: expect.stringContaining('client changed its mind') });
    expect((await c.query('select count(*) from codec_copy_in')).rows[0].map(text)).toEqual(['2']);
  });

  it('LISTEN / NOTIFY → NotificationResponse', async () => {
    const c = await session();
    const channel = `codec_${randomBytes(4).toString('hex')}`;
    await c.query(`listen ${channel}`);
    const r = await c.query(`notify ${channel}, 'payload ü'`);
    const note = r.messages.find((m) => m.kind === 'NotificationResponse');
    expect(note).toMatchObject({ channel, payload: 'payload ü', pid: expect.any(Number) });
  });

  it('FunctionCall (fast path) → FunctionCallResponse', async () => {
    const c = await session();
    const oid = Number(text((await c.query("select 'int4pl'::regproc::oid")).rows[0][0]));
    c.send(Buffer.concat([fe.encodeFunctionCall({ functionOid: oid, argFormats: [1], args: [Buffer.from([0, 0, 0, 40]), Buffer.from([0, 0, 0, 2])], resultFormat: 1 })]));
    const msgs = await c.until('ReadyForQuery');
    const resp = msgs.find((m) => m.kind === 'FunctionCallResponse');
    expect(resp?.kind === 'FunctionCallResponse' && resp.result?.readInt32BE(0)).toBe(42);
  });

  it('CancelRequest from a second connection cancels a running query', async () => {
    const c = await PgWireClient.connect({ host: HOST, port: PORT });
    clients.push(c);
    const hello = await c.startup({ user: 'postgres', database: DATABASE });
    const key = hello.find((m) => m.kind === 'BackendKeyData');
    if (key?.kind !== 'BackendKeyData') throw new Error('no BackendKeyData');
    c.send(fe.encodeQuery('select pg_sleep(20)'));
    await new Promise((r) => setTimeout(r, 200));
    await new Promise<void>((resolve, reject) => {
      const s = connect(PORT, HOST, () => s.end(fe.encodeCancelRequest(key.pid, key.secretKey)));
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    const r = collect(await c.until('ReadyForQuery'));
    expect(r.error).toMatchObject({ code: '57014' });
  });

  it('SSLRequest gets one byte (S or N); after N the startup goes on on the same socket', async () => {
    const s = connect(PORT, HOST);
    const framer = new PgFramer({ startup: false, from: 'server' });
    const frames: PgFrame[] = [];
    let sslAnswer: string | null = null;
    const done = new Promise<void>((resolve, reject) => {
      s.on('data', (chunk: Buffer) => {
        if (sslAnswer === null) {
          sslAnswer = String.fromCharCode(chunk[0]);
          if (sslAnswer !== 'N') return s.destroy();
          s.write(fe.encodeStartupMessage({ user: 'postgres', database: DATABASE }));
          chunk = chunk.subarray(1);
        }
        framer.push(chunk);
        for (let f = framer.next(); f; f = framer.next()) {
          frames.push(f);
          if (decodeBackendMessage(f).kind === 'ReadyForQuery') s.end(fe.encodeTerminate());
        }
      });
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    s.write(fe.encodeSSLRequest());
    await done;
    expect(['S', 'N']).toContain(sslAnswer);
    if (sslAnswer === 'N') expect(frames.map((f) => decodeBackendMessage(f).kind).at(-1)).toBe('ReadyForQuery');
  });

  it('asking for protocol 3.2 and an unknown _pq_ option → NegotiateProtocolVersion', async () => {
    const c = await PgWireClient.connect({ host: HOST, port: PORT });
    clients.push(c);
    c.send(fe.encodeStartupMessage({ user: 'postgres', database: DATABASE, '_pq_.portcullis_test': 'on' }, PROTOCOL_VERSION_3_0 + 2));
    const msgs = await c.until('ReadyForQuery');
    const neg = msgs.find((m) => m.kind === 'NegotiateProtocolVersion');
    // PG 18 speaks 3.2 and only lists the option; older servers also lower the minor version.
    expect(neg).toMatchObject({ unrecognized: ['_pq_.portcullis_test'] });
    expect(msgs.at(-1)).toMatchObject({ kind: 'ReadyForQuery' });
  });

  it("a session's raw bytes re-framed one byte at a time give the same messages", async () => {
    const s = connect(PORT, HOST);
    const raw: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      s.on('connect', () =>
        s.write(
          Buffer.concat([
            fe.encodeStartupMessage({ user: 'postgres', database: DATABASE }),
            fe.encodeQuery("select g, md5(g::text), case when g % 3 = 0 then null else repeat('x', g) end from generate_series(1, 50) g"),
            fe.encodeQuery('select 1/0'),
            fe.encodeTerminate(),
          ]),
        ),
      );
      s.on('data', (c: Buffer) => raw.push(c));
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    const bytes = Buffer.concat(raw);
    const whole = new PgFramer({ startup: false, from: 'server' });
    whole.push(bytes);
    const a: PgFrame[] = [];
    for (let f = whole.next(); f; f = whole.next()) a.push(f);
    whole.end();
    const byByte = new PgFramer({ startup: false, from: 'server' });
    const b: PgFrame[] = [];
    for (let i = 0; i < bytes.length; i++) {
      byByte.push(bytes.subarray(i, i + 1));
      for (let f = byByte.next(); f; f = byByte.next()) b.push(f);
    }
    byByte.end();
    expect(b.map((f) => f.frame.toString('hex'))).toEqual(a.map((f) => f.frame.toString('hex')));
    const kinds = a.map((f) => decodeBackendMessage(f).kind);
    expect(kinds.filter((k) => k === 'DataRow')).toHaveLength(50);
    expect(kinds.filter((k) => k === 'ReadyForQuery')).toHaveLength(3);
    expect(kinds).toContain('ErrorResponse');
    const rows = a.filter((f) => f.type === 0x44).map((f) => decodeDataRow(f.payload));
    expect(rows[2][2]).toBeNull();
    expect(text(rows[4][2])).toBe('xxxxx');
  });
});
