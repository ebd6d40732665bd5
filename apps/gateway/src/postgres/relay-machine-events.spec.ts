import {
  PgFramer,
  encodeBind,
  encodeCommandComplete,
  encodeErrorResponse,
  encodeExecute,
  encodeParse,
  encodeQuery,
  encodeReadyForQuery,
  encodeSync,
  type PgFrame,
} from '@portcullis/protocol';
import { describe, expect, it } from 'vitest';
import { ALLOW_ALL_HOOKS, type SessionHooks, type Verdict } from './session-hooks.js';
import { RelayMachine } from './relay-machine.js';

const fromServer = (bytes: Buffer): PgFrame => {
  const f = new PgFramer({ startup: false, from: 'server' });
  f.push(bytes);
  return f.next()!;
};
const fromClient = (bytes: Buffer): PgFrame => {
  const f = new PgFramer({ startup: false, from: 'client' });
  f.push(bytes);
  return f.next()!;
};

/** A session through the machine, recording the events it makes as [type, data, at?]. */
function session(hooks: Partial<SessionHooks> = {}) {
  const events: Array<{ type: string; data: Record<string, unknown>; at?: number }> = [];
  let holding = 0;
  const m = new RelayMachine(
    { ...ALLOW_ALL_HOOKS, ...hooks },
    { toClient: () => {}, toUpstream: () => {} },
    {
      query: (data, at) => events.push({ type: 'query', data, at }),
      decision: (data, at) => events.push({ type: 'decision', data, at }),
      result: (data) => events.push({ type: 'result', data }),
      statement: (q, d, r, at) => events.push({ type: 'statement', data: { ...q, ...d, ...r }, at }),
      holding: () => holding++,
    },
    { decision: () => {}, masked: () => {} },
    'alice',
  );
  const upstream = async (...frames: Buffer[]) => {
    for (const b of frames) await m.fromUpstream(fromServer(b));
  };
  const client = async (...frames: Buffer[]) => {
    for (const b of frames) await m.fromClient(fromClient(b));
  };
  return { m, events, types: () => events.map((e) => e.type), holding: () => holding, upstream, client };
}

const verdict = (action: Verdict['action'], rule: string | null = 'r1'): Verdict => ({ action, rule, reason: `${action} by test` });

describe('RelayMachine per-statement events', () => {
  it('a simple Query that runs is one statement event: query, decision and result together, at its decision time', async () => {
    const s = session({ onQuery: () => ({ ...verdict('allow'), kinds: ['SELECT'], cached: true, policyVersion: 3 }) });
    const before = Date.now();
    await s.client(encodeQuery('SELECT 1'));
    expect(s.events).toEqual([]);
    expect(s.holding()).toBe(1);
    await s.upstream(encodeCommandComplete('SELECT 1'), encodeReadyForQuery('I'));
    expect(s.types()).toEqual(['statement']);
    const [e] = s.events;
    expect(e!.data).toMatchObject({ sql: 'SELECT 1', protocol: 'simple', action: 'allow', rule: 'r1', reason: 'allow by test', kinds: ['SELECT'], cached: true, policyVersion: 3, tag: 'SELECT 1', rows: 1 });
    expect(e!.at).toBeGreaterThanOrEqual(before);
  });

  it('a blocked simple Query is one statement event carrying the refusal', async () => {
    const s = session({ onQuery: () => verdict('block', 'no-ddl') });
    await s.client(encodeQuery('DROP TABLE t'));
    expect(s.types()).toEqual(['statement']);
    expect(s.events[0]!.data).toMatchObject({ sql: 'DROP TABLE t', action: 'block', rule: 'no-ddl', rows: 0, error: { code: '42501' } });
  });

  it('a statement held for approval is recorded at once as query and decision, its result later', async () => {
    let approve!: () => void;
    const s = session({
      onQuery: () => verdict('require_approval', 'bulk'),
      onApprovalRequired: () => new Promise((r) => (approve = () => r({ approved: true, message: '' }))),
    });
    const running = s.client(encodeQuery('DELETE FROM t'));
    expect(s.types()).toEqual(['query', 'decision']);
    approve();
    await running;
    await s.upstream(encodeCommandComplete('DELETE 3'), encodeReadyForQuery('I'));
    expect(s.types()).toEqual(['query', 'decision', 'result']);
    expect(s.events[2]!.data).toMatchObject({ tag: 'DELETE 3', rows: 3 });
  });

  it('a statement still running when its starts are released gets query and decision now (with its decision time) and its result later', async () => {
    const s = session();
    await s.client(encodeQuery('SELECT pg_sleep(5)'));
    const decidedAt = Date.now();
    // not yet a second old: nothing to release
    expect(s.m.releaseStarts(decidedAt - 1000)).toBe(1);
    expect(s.events).toEqual([]);
    expect(s.m.releaseStarts(decidedAt + 1)).toBe(0);
    expect(s.types()).toEqual(['query', 'decision']);
    expect(s.events[0]!.at).toBeLessThanOrEqual(decidedAt);
    expect(s.events[1]!.at).toBe(s.events[0]!.at);
    await s.upstream(encodeCommandComplete('SELECT 1'), encodeReadyForQuery('I'));
    expect(s.types()).toEqual(['query', 'decision', 'result']);
  });

  it('the end of a session releases every statement still running (none is missing from the record)', async () => {
    const s = session();
    await s.client(encodeQuery('SELECT 1'), encodeQuery('SELECT 2'));
    expect(s.m.releaseStarts(Infinity)).toBe(0);
    expect(s.events.map((e) => [e.type, e.data.sql ?? e.data.action])).toEqual([['query', 'SELECT 1'], ['decision', 'allow'], ['query', 'SELECT 2'], ['decision', 'allow']]);
  });

  it('an extended Parse is recorded at once (its executions come later); held simple statements go first so the chain keeps the order', async () => {
    const s = session();
    await s.client(encodeQuery('SELECT 1'));
    await s.client(encodeParse({ name: 's1', query: 'SELECT $1' }), encodeBind({ statement: 's1', params: [Buffer.from('7')] }), encodeExecute(), encodeSync());
    expect(s.events.map((e) => [e.type, e.data.sql ?? e.data.action])).toEqual([['query', 'SELECT 1'], ['decision', 'allow'], ['query', 'SELECT $1'], ['decision', 'allow']]);
    await s.upstream(encodeCommandComplete('SELECT 1'), encodeReadyForQuery('I'));
    await s.upstream(encodeCommandComplete('SELECT 1'), encodeReadyForQuery('I'));
    expect(s.types()).toEqual(['query', 'decision', 'query', 'decision', 'result', 'result']);
  });

  it('a failing simple Query is one statement event with its error', async () => {
    const s = session();
    await s.client(encodeQuery('SELECT * FROM nope'));
    await s.upstream(encodeErrorResponse({ severity: 'ERROR', code: '42P01', message: 'relation "nope" does not exist' }), encodeReadyForQuery('I'));
    expect(s.types()).toEqual(['statement']);
    expect(s.events[0]!.data).toMatchObject({ sql: 'SELECT * FROM nope', action: 'allow', error: { code: '42P01' } });
  });

  it('pipelined simple Queries each become one statement event, in order', async () => {
    const s = session();
    await s.client(encodeQuery('SELECT 1'), encodeQuery('SELECT 2'), encodeQuery('SELECT 3'));
    await s.upstream(
      encodeCommandComplete('SELECT 1'), encodeReadyForQuery('I'),
      encodeCommandComplete('SELECT 1'), encodeReadyForQuery('I'),
      encodeCommandComplete('SELECT 1'), encodeReadyForQuery('I'),
    );
    expect(s.events.map((e) => [e.type, e.data.sql])).toEqual([['statement', 'SELECT 1'], ['statement', 'SELECT 2'], ['statement', 'SELECT 3']]);
    expect(s.m.releaseStarts(Infinity)).toBe(0);
  });
});
