import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ParseResult, ScanResult } from 'libpg-query';
import { ParserFaultError, ParserUnavailableError, SqlSyntaxError, StatementTooComplexError } from './errors.js';
import { assertNotTooComplex } from './sql-complexity.js';

/**
 * The one owner of the Postgres parser (libpg-query's WebAssembly build). Every parse, PL/pgSQL
 * parse and scan of this library goes through here, so that a fault of the parser stays a refusal
 * of one statement instead of an outage:
 *
 *  - before parsing, a text whose expressions could nest deeper than the parser takes is refused
 *    (sql-complexity.ts → StatementTooComplexError, SQLSTATE 54001);
 *  - anything else the WebAssembly throws that is not a syntax error (a stack overflow, a memory
 *    fault, anything unknown) marks the instance broken: it is dropped at once, a standby instance
 *    takes over in the same call, and a new standby is made in the background. The statement is
 *    refused (ParserFaultError, 54001), never retried (it would fault the next instance too).
 *    An instance that overflowed its stack leaks its Postgres memory contexts and, after ~30 such
 *    failures, faults on every statement: so one is never used again after its first fault;
 *  - an instance whose linear memory grew (a very large statement) is swapped for a fresh one the
 *    same way, since WebAssembly memory never shrinks.
 *
 * Why not libpg-query's own `parseSync`: it keeps one module-level instance that cannot be
 * replaced, and importing it a second time under another URL would keep the broken one reachable
 * from Node's module map for ever. The package's Emscripten factory makes as many instances as we
 * ask for; each gets its own memory, which is freed when the instance is no longer referenced.
 * The code is compiled once and instantiated synchronously from the compiled module (~20 ms).
 * A worker thread per parse was measured too (bench/parser-bench.mjs): the round trip costs more
 * than the parse, so the parse stays in process.
 *
 * The only I/O of this library: reading the .wasm file once, in `initSqlParser()`.
 */

/** The exports of libpg-query's Emscripten module this file uses (the package ships no types for it). */
interface ParserModule {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(p: number): void;
  lengthBytesUTF8(s: string): number;
  stringToUTF8(s: string, p: number, max: number): void;
  UTF8ToString(p: number): string;
  getValue(p: number, type: 'i32'): number;
  _wasm_parse_query_raw(p: number): number;
  _wasm_free_parse_result(p: number): void;
  _wasm_parse_plpgsql(p: number): number;
  _wasm_scan(p: number): number;
  _wasm_free_string(p: number): void;
}
type ParserFactory = (opts: { instantiateWasm: (imports: object, done: (instance: object) => void) => object }) => Promise<ParserModule>;
/** Node's WebAssembly global (the project's TypeScript libs have no WebAssembly types). */
interface WasmApi {
  compile(bytes: Uint8Array): Promise<object>;
  Instance: new (module: object, imports: object) => object;
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Grown past its initial 128 MiB, an instance is replaced by a fresh one after the parse (memory never shrinks). */
const RECYCLE_ABOVE_BYTES = 160 * 1024 * 1024;
/** Delay before trying again when making an instance failed. */
const RETRY_MS = 1000;

export interface ParserHealth {
  /** a parser instance is ready for the next statement */
  healthy: boolean;
  /** why not, when not healthy */
  reason: string | null;
  /** a second instance stands by to take over at the next fault */
  standby: boolean;
  /** instances replaced, by why */
  restarts: { fault: number; memory: number };
  /** the last fault's message (internal: for logs, never for clients) */
  lastFault: string | null;
}

/** the compiled parser: each instance is made from it synchronously */
let compiled: object | null = null;
let factory: ParserFactory | null = null;
let active: ParserModule | null = null;
let standby: ParserModule | null = null;
let making: Promise<void> | null = null;
let loading: Promise<void> | null = null;
let makeError: string | null = null;
let retryTimer: ReturnType<typeof setTimeout> | null = null;
const restarts = { fault: 0, memory: 0 };
let lastFault: string | null = null;

/** Test seam (failInstanceCreationForTest): instance creations still to fail. */
let failCreations = 0;

async function newInstance(): Promise<ParserModule> {
  if (failCreations > 0) {
    failCreations--;
    throw new Error('instance creation failed (simulated by a test)');
  }
  const mod = compiled!;
  return factory!({
    instantiateWasm(imports, done) {
      done(new wasm.Instance(mod, imports));
      return {};
    },
  });
}

/** Makes the standby instance (and the active one, when there is none) unless already under way. */
function replenish(): Promise<void> {
  if (making) return making;
  if (active && standby) return Promise.resolve();
  making = (async () => {
    try {
      // re-checked after each instance: a fault may have promoted the standby meanwhile
      while (!active || !standby) {
        const made = await newInstance();
        if (!active) active = made;
        else standby = made;
      }
      makeError = null;
    } catch (err) {
      makeError = `a parser instance could not be created: ${(err as Error).message}`;
      retryTimer ??= setTimeout(() => { retryTimer = null; void replenish(); }, RETRY_MS);
      retryTimer.unref?.();
    } finally {
      making = null;
    }
  })();
  return making;
}

/** Loads and compiles the parser once and makes its first two instances. Idempotent. */
export function initSqlParser(): Promise<void> {
  loading ??= (async () => {
    const require = createRequire(import.meta.url);
    factory = require('libpg-query/wasm/libpg-query.js') as ParserFactory;
    compiled = await wasm.compile(readFileSync(require.resolve('libpg-query/wasm/libpg-query.wasm')));
    await replenish();
    if (!active) throw new Error(makeError ?? 'the SQL parser could not be started');
  })().catch((err: unknown) => {
    loading = null;
    throw err;
  });
  return loading;
}

/** Drops the active instance (it is unreachable from here on) and promotes the standby. */
function replace(why: 'fault' | 'memory'): void {
  active = standby;
  standby = null;
  restarts[why]++;
  void replenish();
}

function instance(): ParserModule {
  if (active) return active;
  if (!compiled) {
    // started here too, so a caller that forgot to await it recovers; this statement is refused
    void initSqlParser().catch(() => undefined);
    throw new ParserUnavailableError('the SQL parser is not loaded yet: await initPolicyEngine() first');
  }
  // while creation keeps failing, the retry timer paces the attempts (not every statement)
  if (!retryTimer) void replenish();
  throw new ParserUnavailableError(makeError ?? 'the SQL parser is being restarted');
}

/**
 * Runs one call into the parser with `sql` in its memory. A throw out of the WebAssembly (not a
 * syntax error: those come back as values) breaks the instance: it is replaced and the statement
 * refused.
 */
function call<T>(sql: string, run: (m: ParserModule, ptr: number) => T): T {
  const m = instance();
  let result: T;
  try {
    const len = m.lengthBytesUTF8(sql) + 1;
    const ptr = m._malloc(len);
    try {
      m.stringToUTF8(sql, ptr, len);
      result = run(m, ptr);
    } finally {
      m._free(ptr);
    }
  } catch (err) {
    if (err instanceof SqlSyntaxError) throw err;
    lastFault = `${(err as Error)?.name ?? 'Error'}: ${(err as Error)?.message ?? String(err)}`;
    if (active === m) replace('fault');
    throw new ParserFaultError('the SQL parser failed on this statement and was restarted', { cause: err });
  }
  if (m.HEAPU8.buffer.byteLength > RECYCLE_ABOVE_BYTES && active === m && standby) replace('memory');
  return result;
}

/** Parses SQL; throws SqlSyntaxError, StatementTooComplexError, ParserFaultError or ParserUnavailableError. */
export function parseSql(sql: string): ParseResult {
  if (sql === '') throw new SqlSyntaxError('empty statement');
  assertNotTooComplex(sql);
  return call(sql, rawParse);
}

function rawParse(m: ParserModule, ptr: number): ParseResult {
  const res = m._wasm_parse_query_raw(ptr);
  if (!res) throw new Error('parser returned no result');
  try {
    const tree = m.getValue(res, 'i32');
    const error = m.getValue(res + 8, 'i32');
    // PgQueryParseResult {tree, stderr, error}; PgQueryError {message, …}
    if (error) throw new SqlSyntaxError(m.UTF8ToString(m.getValue(error, 'i32')) || 'syntax error');
    if (!tree) throw new Error('parser returned no tree');
    return JSON.parse(m.UTF8ToString(tree)) as ParseResult;
  } finally {
    m._wasm_free_parse_result(res);
  }
}

/** Parses the PL/pgSQL routine of one DO / CREATE FUNCTION statement; its errors are SqlSyntaxErrors. */
export function parsePlPgSql(sql: string): ParseResult {
  assertNotTooComplex(sql);
  return call(sql, (m, ptr) => jsonOrError<ParseResult>(m, m._wasm_parse_plpgsql(ptr)));
}

/** The Postgres lexer's tokens of `sql` (the scanner is not recursive: no complexity bound needed). */
export function scanSql(sql: string): ScanResult {
  return call(sql, (m, ptr) => jsonOrError<ScanResult>(m, m._wasm_scan(ptr)));
}

/** A string the parser returned (and is freed here): a JSON object, or else the error message. */
function jsonOrError<T>(m: ParserModule, res: number): T {
  try {
    const text = m.UTF8ToString(res);
    if (!text.startsWith('{')) throw new SqlSyntaxError(text);
    return JSON.parse(text) as T;
  } finally {
    if (res) m._wasm_free_string(res);
  }
}

/** Whether statements can be parsed now, and how often instances were replaced (for /readyz and metrics). */
export function parserHealth(): ParserHealth {
  const healthy = active !== null;
  return {
    healthy,
    reason: healthy ? null : compiled ? (makeError ?? 'the SQL parser is being restarted') : 'the SQL parser is not loaded',
    standby: standby !== null,
    restarts: { ...restarts },
    lastFault,
  };
}

/**
 * For tests: the next `count` instance creations fail (0 ends it), as they would when the process
 * is out of memory. Not exported by the library.
 */
export function failInstanceCreationForTest(count: number): void {
  failCreations = count;
}

/**
 * Parses without the complexity bound: only for tests and the bench, which need a real fault of the
 * parser to show that it is survived. Not exported by the library.
 */
export function parseSqlUnguarded(sql: string): ParseResult {
  return call(sql, rawParse);
}

/** SQLSTATE 54001 (statement_too_complex): what the client gets for a statement refused here. */
export const SQLSTATE_STATEMENT_TOO_COMPLEX = '54001';
/** SQLSTATE 53000 (insufficient_resources): no parser instance right now; the same statement may pass later. */
export const SQLSTATE_PARSER_UNAVAILABLE = '53000';

/** Why a text could not be parsed, as the analyser reports it (sql-analyzer.ts Analysis.parseError). */
export interface ParseFailure {
  reason: string;
  /** true: not a syntax error (always blocked, whatever dynamicSql says) */
  crashed: boolean;
  /** the rule the decision names (default `parse-error`) */
  rule?: string;
  /** the SQLSTATE the client gets (default: the gateway's 42501) */
  sqlstate?: string;
  /** the same text may parse later: the decision must not be cached */
  transient?: boolean;
}

/**
 * The refusal for a failure of this module that is not a syntax error, or null. A statement too
 * complex and a statement the parser faulted on are both refused as `statement-too-complex` with
 * SQLSTATE 54001 and blocked whatever the policy's dynamicSql says: the parser could not read them,
 * and a text that broke it is an attack on every session, not SQL a policy may let through unread.
 */
export function parserRefusal(err: unknown): ParseFailure | null {
  if (err instanceof StatementTooComplexError) {
    return { reason: err.message, crashed: true, rule: 'statement-too-complex', sqlstate: SQLSTATE_STATEMENT_TOO_COMPLEX };
  }
  if (err instanceof ParserFaultError) {
    return { reason: 'statement too complex: the SQL parser could not read it', crashed: true, rule: 'statement-too-complex', sqlstate: SQLSTATE_STATEMENT_TOO_COMPLEX };
  }
  if (err instanceof ParserUnavailableError) {
    return { reason: 'the gateway\'s SQL parser is restarting; try the statement again', crashed: true, rule: 'parser-unavailable', sqlstate: SQLSTATE_PARSER_UNAVAILABLE, transient: true };
  }
  return null;
}
