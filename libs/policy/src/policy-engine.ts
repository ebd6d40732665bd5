import { StatementTooLargeError } from './errors.js';
import {
  DEFAULT_MAX_STATEMENT_BYTES, compilePolicy, evaluateUncached, oversize, tooLargeDecision,
  type CompiledPolicy, type Decision, type EvaluateContext,
} from './guardrails.js';
import type { PolicyDocument } from './policy-document.js';
import { initSqlParser } from './sql-parser.js';
import { sqlShape } from './sql-scanner.js';

/** Loads the WASM Postgres parser once (sql-parser.ts). Idempotent; await it before the first evaluate. */
export function initPolicyEngine(): Promise<void> {
  return initSqlParser();
}

/** Pure, uncached evaluation (STYLE.md: a decision is a pure function). Fails closed, never throws. */
export function evaluate(sql: string, doc: PolicyDocument, _ctx?: EvaluateContext): Decision {
  return { ...evaluateUncached(sql, compilePolicy(doc)).decision, cached: false };
}

/** Throws StatementTooLargeError when `sql` is over `limit` bytes (for callers that refuse before evaluating). */
export function assertStatementSize(sql: string, limit: number = DEFAULT_MAX_STATEMENT_BYTES): void {
  const bytes = oversize(sql, limit);
  if (bytes >= 0) throw new StatementTooLargeError(bytes, limit);
}

/** Texts longer than this are not kept in the exact-text cache (their shape still may be). */
const MAX_CACHED_TEXT = 16 * 1024;

export interface PolicyEngineOptions {
  /** the policy's revision; decisions are cached per engine, so one engine per revision */
  revision?: string | number;
  maxStatementBytes?: number;
  /** entries per cache (exact text, literal-free shape); default 10,000 each */
  cacheSize?: number;
}

/**
 * A compiled policy with a decision cache. Two caches:
 *  - by exact text, for every decision;
 *  - by literal-free shape (sql-scanner.ts), only for decisions that did not depend on any literal
 *    value, so `SELECT … WHERE id = 1` and `… id = 2` share a parse while `DELETE … WHERE 1 = 1`
 *    and `… WHERE 1 = 2`, DO blocks and EXPLAIN (ANALYZE 0|1) never do.
 * Eviction is first-in first-out, which keeps a hit to one Map lookup.
 */
export class PolicyEngine {
  readonly document: PolicyDocument;
  readonly revision: string | number | undefined;
  private readonly policy: CompiledPolicy;
  private readonly cacheSize: number;
  private readonly exact = new Map<string, Decision>();
  private readonly shapes = new Map<string, Decision>();
  private hits = 0;
  private misses = 0;

  constructor(doc: PolicyDocument, opts: PolicyEngineOptions = {}) {
    this.document = doc;
    this.revision = opts.revision;
    this.policy = compilePolicy(doc, opts.maxStatementBytes);
    this.cacheSize = Math.max(1, opts.cacheSize ?? 10_000);
  }

  get maxStatementBytes(): number {
    return this.policy.maxStatementBytes;
  }

  /** Decides on one SQL text (a simple-protocol query or an extended-protocol Parse). Never throws. */
  evaluate(sql: string, _ctx?: EvaluateContext): Decision {
    if (typeof sql !== 'string') return { ...evaluateUncached(sql, this.policy).decision, cached: false };
    const limit = this.policy.maxStatementBytes;
    if (sql.length * 3 > limit) {
      const bytes = oversize(sql, limit);
      if (bytes >= 0) return { ...tooLargeDecision(bytes, limit), cached: false };
    }
    const hit = this.exact.get(sql);
    if (hit !== undefined) {
      this.hits++;
      return hit;
    }
    const shape = sqlShape(sql);
    if (shape !== null) {
      const shared = this.shapes.get(shape);
      if (shared !== undefined) {
        this.hits++;
        return shared;
      }
    }
    this.misses++;
    const verdict = evaluateUncached(sql, this.policy);
    // a parser being restarted is no answer about this text: ask again next time
    if (verdict.cacheable === false) return { ...verdict.decision, cached: false };
    const cached: Decision = Object.freeze({ ...verdict.decision, kinds: Object.freeze([...verdict.decision.kinds]) as string[], cached: true });
    if (sql.length <= MAX_CACHED_TEXT) this.remember(this.exact, sql, cached);
    if (shape !== null && verdict.shareable) this.remember(this.shapes, shape, cached);
    return { ...verdict.decision, cached: false };
  }

  /** Cache counters, for metrics. */
  stats(): { hits: number; misses: number; exactEntries: number; shapeEntries: number } {
    return { hits: this.hits, misses: this.misses, exactEntries: this.exact.size, shapeEntries: this.shapes.size };
  }

  private remember(map: Map<string, Decision>, key: string, d: Decision): void {
    if (map.size >= this.cacheSize) {
      const oldest = map.keys().next();
      if (!oldest.done) map.delete(oldest.value);
    }
    map.set(key, d);
  }
}
