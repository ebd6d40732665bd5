/**
 * Errors of the policy library. Named classes with `cause`, like every Portcullis lib; this lib
 * keeps its own base class so it does not depend on @portcullis/protocol at runtime.
 */
export class PolicyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export interface PolicyIssue {
  /** dotted path of the bad field, e.g. `guardrails.0.match.statements.1`; `(root)` for the document */
  path: string;
  message: string;
}

/** A policy document did not validate. The message names every bad field by its path. */
export class PolicyValidationError extends PolicyError {
  readonly issues: PolicyIssue[];
  constructor(issues: PolicyIssue[], options?: { cause?: unknown }) {
    super(`invalid policy document: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, options);
    this.issues = issues;
  }
}

/** A statement is larger than the configured cap (default 1 MiB); it is refused before parsing. */
export class StatementTooLargeError extends PolicyError {
  readonly bytes: number;
  readonly limit: number;
  constructor(bytes: number, limit: number, options?: { cause?: unknown }) {
    super(`statement of ${bytes} bytes exceeds the limit of ${limit} bytes`, options);
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** The SQL parser failed in a way that is not a syntax error (a crash of the WASM module, a stack overflow). */
export class SqlAnalysisError extends PolicyError {}

/** The SQL text is not valid SQL (or PL/pgSQL): the parser's own error message, safe to show. */
export class SqlSyntaxError extends PolicyError {}

/**
 * A statement is refused before parsing because its expressions nest deeper than the parser can
 * take safely (sql-complexity.ts). Clients get SQLSTATE 54001 (statement_too_complex) for that
 * statement alone.
 */
export class StatementTooComplexError extends PolicyError {
  /** the estimated expression depth */
  readonly depth: number;
  readonly limit: number;
  constructor(depth: number, limit: number, options?: { cause?: unknown }) {
    super(`statement too complex: its expressions nest about ${depth} levels deep; the gateway parses at most ${limit}`, options);
    this.depth = depth;
    this.limit = limit;
  }
}

/**
 * The parser failed with something other than a syntax error (a stack overflow or a memory fault
 * inside its WebAssembly). The instance that failed has been thrown away; the statement is refused.
 */
export class ParserFaultError extends PolicyError {}

/** No usable parser instance right now (every one failed and a new one is not ready yet). */
export class ParserUnavailableError extends PolicyError {}

/** A value stream did not have the shape the masking plan was made for (e.g. a COPY line with the wrong column count). */
export class MaskingError extends PolicyError {}
