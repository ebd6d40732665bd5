import { describe, expect, it } from 'vitest';
import { canonicalJson } from '@portcullis/protocol';
import { decisionJson, queryJson, resultJson, statementJson } from './event-json.js';
import type { ReturnedSet } from '../postgres/result-capture.js';

/** Every combination of present/absent optional members, each with awkward values. */
function* combos<T extends Record<string, unknown>>(base: T, optional: Record<string, unknown[]>): Generator<T> {
  const names = Object.keys(optional);
  function* rec(i: number, acc: Record<string, unknown>): Generator<T> {
    if (i === names.length) {
      yield { ...base, ...acc } as T;
      return;
    }
    yield* rec(i + 1, acc); // absent
    for (const v of optional[names[i]!]!) yield* rec(i + 1, { ...acc, [names[i]!]: v });
  }
  yield* rec(0, {});
}

const strings = ['', 'plain', 'quote " backslash \\ newline \n tab \t', 'unicode é ü 日本 \u2028 \u0000 😀', '\ud800 lone surrogate'];

describe('per-statement event JSON equals canonicalJson', () => {
  it('query', () => {
    let n = 0;
    for (const sql of strings) {
      for (const protocol of ['simple', 'extended'] as const) {
        for (const d of combos({ sql, protocol }, { statement: ['', 's1', 'é"'], portal: ['', 'p"1'] })) {
          expect(queryJson(d)).toBe(canonicalJson(d));
          n++;
        }
      }
    }
    expect(n).toBeGreaterThan(100);
  });

  it('decision', () => {
    let n = 0;
    for (const action of ['allow', 'block', 'require_approval']) {
      for (const d of combos({ action } as { action: string; rule: string | null; reason: string | null; kinds?: string[]; cached?: boolean; policyVersion?: number }, {
        rule: [null, 'no-ddl', 'ünï "x"'],
        reason: [null, '', 'because\nreasons "quoted"'],
        kinds: [[], ['SELECT'], ['DELETE', 'SELECT', 'é"']],
        cached: [true, false],
        policyVersion: [1, 42],
      })) {
        expect(decisionJson(d)).toBe(canonicalJson(d));
        n++;
      }
    }
    expect(n).toBeGreaterThan(300);
  });

  it('result', () => {
    let n = 0;
    for (const rows of [0, 1, 123456789]) {
      for (const durationMs of [0, 0.123, 1e-7, 12345.678, Number.NaN]) {
        for (const d of combos({ rows, durationMs } as { rows: number; durationMs: number; tag?: string; error?: { code: string; message: string }; masking?: { columns: string[]; values: number }; returned?: ReturnedSet[] }, {
          tag: ['SELECT 1', 'INSERT 0 1', 'é"'],
          error: [{ code: '42501', message: 'blocked "x"\n' }, { message: 'm', code: '08P01' }],
          masking: [{ columns: ['b', 'a.é'], values: 3 }, { values: 0, columns: [] }],
          returned: [[{ columns: [{ name: 'email', typeOid: 25, masking: { by: 'rule', rule: 'emails', strategy: 'partial' } }, { name: 'b', typeOid: 17, format: 'binary' }], rows: [['a****@x.test', '\\x00ff'], [null, 'é"']], masked: [[0], []], truncated: true }]],
        })) {
          expect(resultJson(d)).toBe(canonicalJson(d));
          n++;
        }
      }
    }
    expect(n).toBeGreaterThan(500);
  });

  it('statement: the union of the three, every member combination of each', () => {
    type Q = { sql: string; protocol: 'simple' | 'extended'; statement?: string; portal?: string };
    type D = { action: string; rule: string | null; reason: string | null; kinds?: string[]; cached?: boolean; policyVersion?: number };
    type R = { rows: number; durationMs: number; tag?: string; error?: { code: string; message: string }; masking?: { columns: string[]; values: number }; returned?: ReturnedSet[] };
    const queries = [...combos<Q>({ sql: strings[2]!, protocol: 'simple' }, { statement: ['s1'], portal: ['p"1'] })];
    const decisions = [...combos({ action: 'allow' } as D, { rule: [null, 'ünï "x"'], reason: [null, 'r\n'], kinds: [['SELECT']], cached: [true, false], policyVersion: [3] })];
    const results = [...combos({ rows: 2, durationMs: 0.25 } as R, { tag: ['SELECT 2'], error: [{ code: '42501', message: 'no' }], masking: [{ columns: ['email'], values: 2 }], returned: [[{ columns: [{ name: 'email', typeOid: 25, masking: { by: 'rule', rule: 'emails', strategy: 'partial' } }, { name: 'b', typeOid: 17, format: 'binary' }], rows: [['a****@x.test', '\\x00ff'], [null, 'é"']], masked: [[0], []], truncated: true }]] })];
    let n = 0;
    for (const q of queries) {
      for (const d of decisions) {
        for (const r of results) {
          const json = statementJson(q, d, r);
          expect(json).toBe(canonicalJson({ ...q, ...d, ...r }));
          // no member of one part hides a member of another
          const defined = (o: object) => Object.values(o).filter((v) => v !== undefined).length;
          expect(Object.keys(JSON.parse(json) as object).length).toBe(defined(q) + defined(d) + defined(r));
          n++;
        }
      }
    }
    expect(n).toBeGreaterThan(2000);
  });
});
