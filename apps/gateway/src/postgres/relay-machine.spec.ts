import {
  BackendMessageType as B,
  PgFramer,
  ProtocolError,
  decodeDataRow,
  decodeErrorResponse,
  encodeCloseComplete,
  encodeParseComplete,
  encodeCommandComplete,
  encodeDataRow,
  encodeErrorResponse,
  encodeExecute,
  encodeBind,
  encodeParse,
  encodeQuery,
  encodeSync,
  encodeReadyForQuery,
  encodeRowDescription,
  type PgFrame,
  type RowField,
} from '@portcullis/protocol';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../logger.js';
import { createPolicyHooks } from './policy-hooks.js';
import type { PolicyLib } from '../core/policy-lib.js';
import { ALLOW_ALL_HOOKS, type RowMasker, type SessionHooks } from './session-hooks.js';
import { RelayMachine, type ResultEventData } from './relay-machine.js';
import type { SideConnection } from './side-connection.js';

const frameOf = (bytes: Buffer): PgFrame => {
  const f = new PgFramer({ startup: false, from: 'server' });
  f.push(bytes);
  return f.next()!;
};

const text = (name: string, attr: number, typeOid = 25): RowField => ({ name, tableOid: 16390, columnAttr: attr, typeOid, typeSize: -1, typeModifier: -1, format: 0 });
const layout = [text('id', 1, 23), text('name', 2), text('email', 3), text('card', 4), text('note', 5)];

/** A session through the machine: what the client got, the result events and the masked-values counter. */
function session(hooks: SessionHooks) {
  const toClient: Buffer[] = [];
  const results: ResultEventData[] = [];
  let masked = 0;
  const m = new RelayMachine(
    hooks,
    { toClient: (b) => toClient.push(b), toUpstream: () => {} },
    { query: () => {}, decision: () => {}, result: (d) => results.push(d), statement: (_q, _d, r) => results.push(r) },
    { decision: () => {}, masked: (n) => { masked += n; } },
    'alice',
  );
  const query = async (rows: (string | null)[][]): Promise<void> => {
    await m.fromClient(frameOf(encodeQuery('SELECT id, name, email, card, note FROM customers')));
    const upstream = [encodeRowDescription(layout), ...rows.map((r) => encodeDataRow(r)), encodeCommandComplete(`SELECT ${rows.length}`), encodeReadyForQuery('I')];
    for (const b of upstream) await m.fromUpstream(frameOf(b));
  };
  return { query, toClient, results, masked: () => masked };
}

const rowsOf = (out: Buffer[]) => out.filter((b) => b[0] === B.DataRow).map((b) => decodeDataRow(b.subarray(5)).map((v) => v?.toString() ?? null));

async function benchHooks(): Promise<SessionHooks> {
  const lib = (await import('@portcullis/policy')) as unknown as PolicyLib;
  const document = lib.parsePolicyDocument({
    name: 'bench-masking',
    masking: [
      { name: 'card-numbers', columns: ['public.customers.card'], strategy: 'partial', keepLast: 4 },
      { name: 'emails', columns: ['customers.email'], strategy: 'hash' },
      { name: 'pii-in-free-text', detectors: ['EMAIL', 'CREDIT_CARD', 'PHONE'], strategy: 'redact' },
    ],
  });
  const side = { query: async () => [['16390', 'public', 'customers']], describe: async () => null, close: () => {} } as unknown as SideConnection;
  const logger = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} } as unknown as Logger;
  return createPolicyHooks({
    policy: () => ({ name: 'bench-masking', version: 1, document, engine: { evaluate: () => ({ action: 'allow', rule: null, reason: null }) }, masks: true }),
    lib, maskingKey: Buffer.alloc(32, 1), side, logger,
  });
}

describe('RelayMachine masking DataRows in place', () => {
  it('rewrites the values the plan masks, copies the rest, and counts what changed', async () => {
    const s = session(await benchHooks());
    await s.query([
      ['4', 'Customer 4', 'user4@example.com', '4000 0000 0000 0044', 'call back, new address is person4@mail.example.org'],
      ['5', 'Customer 5', null, '4000 0000 0000 0051', 'customer since 2005, prefers email contact'],
      ['6', null, null, null, null],
    ]);
    const rows = rowsOf(s.toClient);
    expect(rows).toHaveLength(3);
    expect(rows[0][0]).toBe('4');
    expect(rows[0][2]).toMatch(/^h:[0-9a-f]{16}$/);
    expect(rows[0].slice(3)).toEqual(['**** **** **** 0044', 'call back, new address is [REDACTED]']);
    expect(rows[1]).toEqual(['5', 'Customer 5', null, '**** **** **** 0051', 'customer since 2005, prefers email contact']);
    expect(rows[2]).toEqual(['6', null, null, null, null]);
    expect(s.masked()).toBe(4);
    expect(s.results).toEqual([expect.objectContaining({ tag: 'SELECT 3', rows: 3, masking: { columns: ['name', 'email', 'card', 'note'], values: 4 } })]);
  });

  it('a masker that fails half way through a row: the result is withheld, the half-built row never sent', async () => {
    const failing: RowMasker = {
      columns: ['email'],
      maskDataRow: (row, out) => {
        out.setString(2, 'masked');
        if (row.lengths[4] > 0) throw new Error('detector blew up');
        return 1;
      },
      maskCopyLine: (line) => ({ line, changed: 0 }),
    };
    const s = session({ ...ALLOW_ALL_HOOKS, masksResults: true, onRowDescription: () => ({ kind: 'mask', masker: failing }) });
    await s.query([['1', 'a', 'clear@example.com', 'c', ''], ['2', 'b', 'clear2@example.com', 'c', 'boom'], ['3', 'c', 'clear3@example.com', 'c', '']]);
    expect(rowsOf(s.toClient)).toEqual([['1', 'a', 'masked', 'c', '']]);
    const errors = s.toClient.filter((b) => b[0] === B.ErrorResponse).map((b) => decodeErrorResponse(b.subarray(5)));
    expect(errors).toEqual([expect.objectContaining({ code: '42501', message: 'masking failed on a row of this result; the rest of the result was withheld' })]);
    expect(s.toClient.map((b) => b.toString('latin1')).join('')).not.toContain('clear');
    expect(s.toClient.at(-1)![0]).toBe(B.ReadyForQuery);
  });

  it('what a masker wrote goes out even when it reports no change (never the clear row)', async () => {
    const forgetful: RowMasker = {
      columns: ['email'],
      maskDataRow: (_row, out) => { out.setNull(2); return 0; },
      maskCopyLine: (line) => ({ line, changed: 0 }),
    };
    const s = session({ ...ALLOW_ALL_HOOKS, masksResults: true, onRowDescription: () => ({ kind: 'mask', masker: forgetful }) });
    await s.query([['1', 'a', 'clear@example.com', 'c', 'n']]);
    expect(rowsOf(s.toClient)).toEqual([['1', 'a', null, 'c', 'n']]);
  });

  it('a malformed DataRow is a ProtocolError, as before', async () => {
    const machine = new RelayMachine(
      await benchHooks(),
      { toClient: () => {}, toUpstream: () => {} },
      { query: () => {}, decision: () => {}, result: () => {}, statement: () => {} },
      { decision: () => {}, masked: () => {} },
      'alice',
    );
    await machine.fromClient(frameOf(encodeQuery('SELECT 1')));
    await machine.fromUpstream(frameOf(encodeRowDescription(layout)));
    const bad = Buffer.from('44000000090001000000ff', 'hex'); // one value of 255 bytes, none there
    expect(() => machine.fromUpstream({ type: B.DataRow, payload: bad.subarray(5), frame: bad })).toThrow(ProtocolError);
  });
});

/**
 * Pipelines where Postgres skips a Query: after an extended-protocol error every message up to the
 * next Sync is skipped, a Query sent before that Sync too (no ReadyForQuery for it). The machine
 * must not lose count of batches: the next valid query's rows still reach the client (they were
 * withheld as "could not determine the layout of this result"). Upstream answers are Postgres's own
 * (checked against a real server by test/pg-pipeline-fuzz.test.ts).
 */
describe('RelayMachine: batches Postgres skips after a pipelined error', () => {
  const err = (code: string) => encodeErrorResponse({ severity: 'ERROR', code, message: 'x' });
  const rfq = encodeReadyForQuery('I');
  const sel = [encodeRowDescription([text('v', 0)]), encodeDataRow(['42']), encodeCommandComplete('SELECT 1'), rfq];
  it.each([
    {
      name: 'Parse fails, a Query before the Sync is skipped',
      client: [encodeParse({ query: 'selec' }), encodeBind({}), encodeExecute(), encodeQuery('select 1'), encodeSync(), encodeQuery('select v')],
      // the probe's Close is skipped too: the error is the Parse's
      upstream: [err('42601'), rfq, ...sel],
    },
    {
      name: 'Bind fails after a good Parse; two Queries before the Sync are skipped',
      client: [encodeParse({ query: 'select 1' }), encodeBind({ statement: 'nope' }), encodeQuery('select 1'), encodeQuery('select 2'), encodeSync(), encodeQuery('select v')],
      upstream: [encodeParseComplete(), err('26000'), rfq, ...sel],
    },
    {
      name: 'the Query after good extended messages runs (its probe answered) and fails on its own',
      client: [encodeParse({ query: 'select 1' }), encodeQuery('select 1/0'), encodeSync(), encodeQuery('select v')],
      upstream: [encodeParseComplete(), encodeCloseComplete(), err('22012'), rfq, rfq, ...sel],
    },
  ])('$name', async ({ client, upstream }) => {
    const out: Buffer[] = [];
    const results: ResultEventData[] = [];
    const m = new RelayMachine(
      await benchHooks(),
      { toClient: (b) => out.push(b), toUpstream: () => {} },
      { query: () => {}, decision: () => {}, result: (d) => results.push(d), statement: (_q, _d, r) => results.push(r) },
      { decision: () => {}, masked: () => {} },
      'alice',
    );
    for (const c of client) await m.fromClient(frameOf(c));
    for (const u of upstream) await m.fromUpstream(frameOf(u));
    expect(rowsOf(out)).toEqual([['42']]);
    expect(out.filter((b) => b[0] === B.CloseComplete)).toEqual([]);
    expect(out.filter((b) => b[0] === B.ErrorResponse).map((b) => decodeErrorResponse(b.subarray(5)).code)).not.toContain('42501');
    expect(out.at(-1)![0]).toBe(B.ReadyForQuery);
    expect(m.idle).toBe(true);
  });
});
