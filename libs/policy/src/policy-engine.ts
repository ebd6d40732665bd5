import { StatementTooLargeError } from './errors.js';
import {
  DEFAULT_MAX_STATEMENT_BYTES, compilePolicy, evaluateUncached, oversize, tooLargeDecision,
  type CompiledPolicy, type Decision, type EvaluateContext,
} from './guardrails.js';
import { randomBytes } from 'node:crypto';
import {
  evaluateCommand, evaluateFileOperation, evaluateShellLine, type CommandDecision,
} from './command-guardrails.js';
import type { FileOperation, PolicyDocument } from './policy-document.js';
import { createStreamMasker, type StreamMaskerOptions, type TerminalStreamMasker } from './stream-masker.js';
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
  /** the HMAC key of the `hash` masking strategy for stream maskers (createStreamMasker); default a random key per engine */
  maskingKey?: Buffer;
}

/** A file operation as SFTP/SCP present it (`rmdir` is a `remove`, `link` a `symlink`). */
export interface FileOperationInput {
  op: FileOperation | 'rmdir' | 'link';
  path: string;
  /** rename: the new path; symlink/link: the link's target */
  target?: string;
}

/** How an SSH or Kubernetes module asks about a shell command. */
export interface CommandRequest {
  /** `exec`: a command before it reaches the host; `line`: a line typed at an interactive shell (default exec) */
  source?: 'exec' | 'line';
  /** lines: false when the line model could not follow the editing (history, completion) */
  reliable?: boolean;
  /** lines: why not reliable */
  reasons?: string[];
  /** the working directory, when known */
  cwd?: string | null;
  /** exec: the session's input is not decided line by line (no terminal): a shell reading it is dynamic */
  unseenInput?: boolean;
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
  private readonly commands = new Map<string, CommandDecision>();
  private readonly lines = new Map<string, CommandDecision>();
  private readonly maskingKey: Buffer;

  constructor(doc: PolicyDocument, opts: PolicyEngineOptions = {}) {
    this.document = doc;
    this.revision = opts.revision;
    this.policy = compilePolicy(doc, opts.maxStatementBytes);
    this.cacheSize = Math.max(1, opts.cacheSize ?? 10_000);
    this.maskingKey = opts.maskingKey ?? randomBytes(32);
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

  /**
   * Decides on a shell command: an exec command, or a line of an interactive shell (with the
   * policy's unreliableLine setting when the line was not reliably reconstructed). Decisions on the
   * same text are cached (not those with a cwd or an unreliable line). Never throws.
   */
  evaluateCommand(text: string, req: CommandRequest = {}): CommandDecision {
    const line = req.source === 'line';
    if (line && req.reliable === false) return evaluateShellLine({ text, reliable: false, reasons: req.reasons }, this.document, { cwd: req.cwd });
    const cacheable = (req.cwd === undefined || req.cwd === null) && !req.unseenInput && typeof text === 'string' && text.length <= MAX_CACHED_TEXT;
    const cache = line ? this.lines : this.commands;
    if (cacheable) {
      const hit = cache.get(text);
      if (hit) { this.hits++; return { ...hit, cached: true }; }
    }
    this.misses++;
    const d = line ? evaluateShellLine({ text, reliable: true }, this.document, { cwd: req.cwd }) : evaluateCommand(text, this.document, { cwd: req.cwd, unseenInput: req.unseenInput });
    if (cacheable) this.remember(cache, text, Object.freeze({ ...d, kinds: [...d.kinds] }));
    return d;
  }

  /** Decides on an SFTP/SCP file operation (paths normalised; relative ones against `cwd`). Never throws. */
  evaluateFile(op: FileOperationInput, ctx: { cwd?: string | null } = {}): CommandDecision {
    const operation: FileOperation = op.op === 'rmdir' ? 'remove' : op.op === 'link' ? 'symlink' : op.op;
    return evaluateFileOperation({ operation, path: op.path, target: op.target, cwd: ctx.cwd ?? null }, this.document);
  }

  /** A fresh masker for one terminal output stream, or null when the policy masks nothing with detectors. */
  createStreamMasker(opts: Partial<StreamMaskerOptions> = {}): TerminalStreamMasker | null {
    return createStreamMasker(this.document, { ...opts, hmacKey: opts.hmacKey ?? this.maskingKey });
  }

  /** Cache counters, for metrics. */
  stats(): { hits: number; misses: number; exactEntries: number; shapeEntries: number } {
    return { hits: this.hits, misses: this.misses, exactEntries: this.exact.size, shapeEntries: this.shapes.size };
  }

  private remember<T>(map: Map<string, T>, key: string, d: T): void {
    if (map.size >= this.cacheSize) {
      const oldest = map.keys().next();
      if (!oldest.done) map.delete(oldest.value);
    }
    map.set(key, d);
  }
}
