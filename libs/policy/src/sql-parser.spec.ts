import { beforeAll, describe, expect, it } from 'vitest';
import { ParserFaultError, ParserUnavailableError, SqlSyntaxError, StatementTooComplexError } from './errors.js';
import { PolicyEngine, initPolicyEngine } from './policy-engine.js';
import { parsePolicyDocument } from './policy-document.js';
import { parsePlPgSql, parseSql, parseSqlUnguarded, parserHealth, parserRefusal, scanSql } from './sql-parser.js';

beforeAll(async () => {
  await initPolicyEngine();
});

/** Lets the background re-creation of the standby instance run (it needs the event loop for a moment). */
const settle = async () => {
  for (let i = 0; i < 500 && !(parserHealth().healthy && parserHealth().standby); i++) await new Promise((r) => setTimeout(r, 10));
  expect(parserHealth()).toMatchObject({ healthy: true, standby: true });
};

/** Overflows the WebAssembly stack for real (the complexity bound is what normally stops this text). */
const overflow = `SELECT ${Array(25000).fill('1').join('+')}`;

describe('the parser survives its own faults', () => {
  it('a stack overflow in the parser is a refusal of that statement, and the next one parses at once', async () => {
    await settle();
    const before = parserHealth().restarts.fault;
    expect(() => parseSqlUnguarded(overflow)).toThrow(ParserFaultError);
    expect(parserHealth()).toMatchObject({ healthy: true, restarts: { fault: before + 1 } });
    expect(parserHealth().lastFault).toMatch(/RangeError|RuntimeError/);
    // same tick: the standby took over
    expect(parseSql('select 1')).toHaveProperty('stmts');
  });

  it('40 faults in a row leave a parser that works (each faulting instance is dropped, never reused)', async () => {
    const before = parserHealth().restarts.fault;
    for (let i = 0; i < 40; i++) {
      await settle();
      expect(() => parseSqlUnguarded(overflow)).toThrow(ParserFaultError);
    }
    await settle();
    expect(parserHealth().restarts.fault).toBe(before + 40);
    // an instance that had overflowed ~30 times answered `memory access out of bounds` to everything
    expect(parseSql('SET extra_float_digits = 3')).toHaveProperty('stmts');
    expect(parsePlPgSql('DO $$ BEGIN PERFORM 1; END $$')).toHaveProperty('plpgsql_funcs');
    expect(scanSql('select 1').tokens).toHaveLength(2);
  }, 120_000);

  it('faults faster than a new instance is made: refused as unavailable (53000, not cached), then parsed', async () => {
    await settle();
    const engine = new PolicyEngine(parsePolicyDocument({ name: 't', guardrails: [] }));
    expect(() => parseSqlUnguarded(overflow)).toThrow(ParserFaultError); // the standby takes over
    expect(() => parseSqlUnguarded(overflow)).toThrow(ParserFaultError); // no standby left
    expect(parserHealth()).toMatchObject({ healthy: false });
    expect(() => parseSql('select 1')).toThrow(ParserUnavailableError);
    expect(engine.evaluate('select 2')).toMatchObject({ action: 'block', rule: 'parser-unavailable', sqlstate: '53000' });
    await settle();
    expect(parserHealth().healthy).toBe(true);
    expect(engine.evaluate('select 2')).toMatchObject({ action: 'allow', cached: false });
  });

  it('syntax errors are not faults', async () => {
    await settle();
    const before = parserHealth().restarts.fault;
    expect(() => parseSql('SELEC 1')).toThrow(SqlSyntaxError);
    expect(() => parseSql(`SELECT ${'('.repeat(400)}1`)).toThrow(SqlSyntaxError);
    expect(() => parsePlPgSql('DO $$ BEGIN PERFORM (; END $$')).toThrow(SqlSyntaxError);
    expect(parserHealth().restarts.fault).toBe(before);
  });

  it('an instance whose memory grew for a very large statement is swapped for a fresh one', async () => {
    await settle();
    const before = parserHealth().restarts.memory;
    // ~1 MB of select-list items: the parse tree needs more than the initial 128 MiB
    parseSql(`SELECT ${Array(500_000).fill('1').join(',')}`);
    expect(parserHealth().restarts.memory).toBe(before + 1);
    expect(parseSql('select 1')).toHaveProperty('stmts');
  }, 60_000);
});

describe('parse failures as refusals', () => {
  it.each([
    { name: 'too complex', err: new StatementTooComplexError(900, 500), expected: { rule: 'statement-too-complex', sqlstate: '54001', crashed: true } },
    { name: 'parser fault', err: new ParserFaultError('x'), expected: { rule: 'statement-too-complex', sqlstate: '54001', crashed: true, reason: 'statement too complex: the SQL parser could not read it' } },
    { name: 'parser unavailable', err: new ParserUnavailableError('x'), expected: { rule: 'parser-unavailable', sqlstate: '53000', transient: true } },
    { name: 'syntax error (the analyser words it)', err: new SqlSyntaxError('syntax error at or near "x"'), expected: null },
    { name: 'anything else (the analyser fails closed)', err: new RangeError('x'), expected: null },
  ])('$name', ({ err, expected }) => {
    const r = parserRefusal(err);
    if (expected === null) expect(r).toBeNull();
    else expect(r).toMatchObject(expected);
  });
});
