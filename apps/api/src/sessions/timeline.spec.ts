import { describe, expect, it } from 'vitest';
import type { RecordedEvent } from '@portcullis/protocol';
import { buildTimeline } from './timeline.js';

let seq = 0;
const ev = (type: string, data: Record<string, unknown>): RecordedEvent => ({
  id: `00000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`, sessionId: 's', seq, time: new Date(Date.UTC(2026, 11, 7, 12, 0, seq)).toISOString(),
  type, identity: 'carol', connection: 'demo', gateway: 'gw', data, prevHash: 'p', hash: 'h',
});

describe('buildTimeline', () => {
  it('one item per statement: statement events whole; query + decision + approval + results grouped; other events as they are', () => {
    seq = 0;
    const returned = [{ columns: [{ name: 'email', typeOid: 25 }], rows: [['a**@x']], masked: [[0]] }];
    const items = buildTimeline([
      ev('session.start', { applicationName: 'psql' }),
      ev('statement', { sql: 'SELECT email FROM t', protocol: 'simple', action: 'allow', rule: null, reason: null, tag: 'SELECT 1', rows: 1, durationMs: 2, masking: { columns: ['email'], values: 1 }, returned }),
      ev('query', { sql: 'DELETE FROM t', protocol: 'simple' }),
      ev('decision', { action: 'require_approval', rule: 'bulk-writes', reason: 'needs eyes' }),
      ev('approval.requested', { approvalId: 'a1', sql: 'DELETE FROM t', rule: 'bulk-writes', reason: 'needs eyes' }),
      ev('approval.decided', { approvalId: 'a1', status: 'approved', decidedBy: 'bob', comment: 'ok' }),
      ev('result', { tag: 'DELETE 3', rows: 3, durationMs: 1 }),
      ev('query', { sql: 'SELECT $1', protocol: 'extended', statement: 's1' }),
      ev('decision', { action: 'allow', rule: null, reason: null }),
      ev('result', { tag: 'SELECT 1', rows: 1, durationMs: 1 }),
      ev('result', { rows: 0, durationMs: 1, error: { code: '22P02', message: 'bad' } }),
      ev('terminal', { stream: 'x', event: 'o', t: 0.1, data: 'secret output' }),
      ev('session.end', { reason: 'client' }),
    ]);
    expect(items.map((i) => (i.kind === 'statement' ? i.sql : i.type))).toEqual(['session.start', 'SELECT email FROM t', 'DELETE FROM t', 'SELECT $1', 'session.end']);
    const [, select, del, prepared] = items as Extract<(typeof items)[number], { kind: 'statement' }>[];
    expect(select.results[0]).toMatchObject({ tag: 'SELECT 1', rows: 1, masking: { columns: ['email'], values: 1 }, returned });
    expect(del.decision).toEqual({ action: 'require_approval', rule: 'bulk-writes', reason: 'needs eyes' });
    expect(del.approval).toMatchObject({ id: 'a1', status: 'approved', decidedBy: 'bob', comment: 'ok', requestedAt: '2026-12-07T12:00:05.000Z', decidedAt: '2026-12-07T12:00:06.000Z' });
    expect(del.results.map((r) => r.tag)).toEqual(['DELETE 3']);
    expect(prepared.results.map((r) => r.error?.code ?? r.tag)).toEqual(['SELECT 1', '22P02']);
    // a terminal's output stays in its recording
    expect(JSON.stringify(items)).not.toContain('secret output');
  });

  it('a command event (SSH / Kubernetes) is a statement with its decision', () => {
    seq = 0;
    const [item] = buildTimeline([ev('command', { command: 'rm -rf /tmp/x', action: 'block', rule: 'no-rm', reason: 'no' })]);
    expect(item).toMatchObject({ kind: 'statement', sql: 'rm -rf /tmp/x', decision: { action: 'block', rule: 'no-rm' } });
  });
});
