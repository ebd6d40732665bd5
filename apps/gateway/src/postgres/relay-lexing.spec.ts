import {
  BackendMessageType as B,
  FrontendMessageType as F,
  PgFramer,
  decodeErrorResponse,
  decodeParse,
  decodeQuery,
  encodeBind,
  encodeCommandComplete,
  encodeErrorResponse,
  encodeExecute,
  encodeParameterStatus,
  encodeParse,
  encodeQuery,
  encodeReadyForQuery,
  encodeSync,
  type PgFrame,
} from '@portcullis/protocol';
import { describe, expect, it } from 'vitest';
import { ALLOW_ALL_HOOKS } from './session-hooks.js';
import { LexingStateError, RelayMachine } from './relay-machine.js';

/**
 * The relay never decides a statement under lexing rules other than the server's: it follows the
 * server's ParameterStatus reports, and a statement the server might read differently is held
 * until the server has answered what came before it (or refused when no answer can come first).
 */

const frame = (bytes: Buffer, from: 'client' | 'server'): PgFrame => {
  const f = new PgFramer({ startup: false, from });
  f.push(bytes);
  return f.next()!;
};
const fromClient = (b: Buffer) => frame(b, 'client');
const fromServer = (b: Buffer) => frame(b, 'server');

function session() {
  const toClient: Buffer[] = [];
  const toUpstream: Buffer[] = [];
  const decisions: { action: string; rule: string | null }[] = [];
  const m = new RelayMachine(
    ALLOW_ALL_HOOKS,
    { toClient: (b) => toClient.push(b), toUpstream: (b) => toUpstream.push(b) },
    { query: () => {}, decision: (d) => decisions.push(d), result: () => {}, statement: (_q, d) => decisions.push(d) },
    { decision: () => {}, masked: () => {} },
    'alice',
  );
  /** the SQL of each Query/Parse sent upstream */
  const upstreamSql = () =>
    toUpstream.filter((b) => b[0] === F.Query || b[0] === F.Parse).map((b) => (b[0] === F.Query ? decodeQuery(b.subarray(5)).sql : decodeParse(b.subarray(5)).query));
  return { m, toClient, toUpstream, decisions, upstreamSql };
}

const SMUGGLE = "SELECT 'a\\'' ; DROP TABLE t; --'";

describe('RelayMachine and the server lexing settings', () => {
  it.each([
    ['standard_conforming_strings', 'off'],
    ['client_encoding', 'SJIS'],
    ['client_encoding', 'BIG5'],
  ])('a ParameterStatus %s = %s ends the session (LexingStateError, 0A000), before the ReadyForQuery reaches the client', async (name, value) => {
    const s = session();
    await s.m.fromClient(fromClient(encodeQuery("UPDATE pg_settings SET setting = 'x' WHERE name = 'y'")));
    await s.m.fromUpstream(fromServer(encodeCommandComplete('UPDATE 0')));
    expect(() => s.m.fromUpstream(fromServer(encodeParameterStatus(name, value)))).toThrow(LexingStateError);
    try {
      s.m.fromUpstream(fromServer(encodeParameterStatus(name, value)));
    } catch (err) {
      expect((err as LexingStateError).sqlState).toBe('0A000');
      expect((err as Error).message).toMatch(new RegExp(`^terminating connection: ${name} .*${value} is not allowed through the gateway`));
    }
    expect(s.toClient.some((b) => b[0] === B.ReadyForQuery)).toBe(false);
  });

  it.each([
    ['standard_conforming_strings', 'on'],
    ['client_encoding', 'UTF8'],
    ['client_encoding', 'LATIN1'],
    ['application_name', 'psql'],
  ])('a ParameterStatus %s = %s passes to the client', (name, value) => {
    const s = session();
    s.m.fromUpstream(fromServer(encodeParameterStatus(name, value)));
    expect(s.toClient).toHaveLength(1);
  });

  it('a pipelined Query the server might read differently waits for the answer to the one before it', async () => {
    const s = session();
    await s.m.fromClient(fromClient(encodeQuery('SELECT do_something()')));
    const held = s.m.fromClient(fromClient(encodeQuery(SMUGGLE)));
    expect(held).toBeInstanceOf(Promise);
    expect(s.upstreamSql()).toEqual(['SELECT do_something()']);
    await s.m.fromUpstream(fromServer(encodeCommandComplete('SELECT 1')));
    await s.m.fromUpstream(fromServer(encodeReadyForQuery('I')));
    await held;
    expect(s.upstreamSql()).toEqual(['SELECT do_something()', SMUGGLE]);
  });

  it('…and never goes upstream when the answer reports standard_conforming_strings off', async () => {
    const s = session();
    await s.m.fromClient(fromClient(encodeQuery('SELECT do_something()')));
    const held = s.m.fromClient(fromClient(encodeQuery(SMUGGLE)));
    await s.m.fromUpstream(fromServer(encodeCommandComplete('SELECT 1')));
    expect(() => s.m.fromUpstream(fromServer(encodeParameterStatus('standard_conforming_strings', 'off')))).toThrow(LexingStateError);
    const settled = await Promise.race([held, new Promise((r) => setTimeout(() => r('still held'), 50))]);
    expect(settled).toBe('still held');
    expect(s.upstreamSql()).toEqual(['SELECT do_something()']);
  });

  it('a pipelined statement that reads the same under any setting (ASCII, no backslash) is not held', async () => {
    const s = session();
    await s.m.fromClient(fromClient(encodeQuery('SELECT do_something()')));
    expect(s.m.fromClient(fromClient(encodeQuery("SELECT 'plain' FROM t")))).toBeUndefined();
    expect(s.m.fromClient(fromClient(encodeParse({ query: 'SELECT $1::int' })))).toBeUndefined();
    expect(s.upstreamSql()).toHaveLength(3);
  });

  it('a Parse after Sync is held like a Query', async () => {
    const s = session();
    for (const b of [encodeParse({ query: 'SELECT f()' }), encodeBind({}), encodeExecute(), encodeSync()]) await s.m.fromClient(fromClient(b));
    const held = s.m.fromClient(fromClient(encodeParse({ query: "SELECT 'ü'" })));
    expect(held).toBeInstanceOf(Promise);
    await s.m.fromUpstream(fromServer(encodeReadyForQuery('I')));
    await held;
    expect(s.upstreamSql()).toEqual(['SELECT f()', "SELECT 'ü'"]);
  });

  it.each([
    ['Execute', [encodeParse({ query: 'SELECT f()' }), encodeBind({}), encodeExecute()]],
    ['Bind', [encodeParse({ query: 'SELECT f()' }), encodeBind({})]],
    ['Parse', [encodeParse({ query: 'SELECT f()' })]],
  ])('a Parse the server might read differently after an unsynced %s is refused (no answer comes before Sync)', async (_what, before) => {
    const s = session();
    for (const b of before) await s.m.fromClient(fromClient(b));
    expect(s.m.fromClient(fromClient(encodeParse({ query: SMUGGLE })))).toBeUndefined();
    await s.m.fromClient(fromClient(encodeSync()));
    // upstream gets a placeholder that fails to parse; the client gets the refusal in its place
    expect(s.upstreamSql()[1]).toMatch(/^portcullis_refused_/);
    expect(s.decisions.at(-1)).toEqual(expect.objectContaining({ action: 'block', rule: 'lexing' }));
    const placeholder = s.upstreamSql()[1];
    await s.m.fromUpstream(fromServer(encodeErrorResponse({ severity: 'ERROR', code: '42601', message: `syntax error at or near "${placeholder}"` })));
    const err = decodeErrorResponse(s.toClient.find((b) => b[0] === B.ErrorResponse)!.subarray(5));
    expect(err.code).toBe('42501');
    expect(err.message).toMatch(/rule "lexing".*send Sync before it/);
  });
});
