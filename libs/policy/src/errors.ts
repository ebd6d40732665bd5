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

/** A value stream did not have the shape the masking plan was made for (e.g. a COPY line with the wrong column count). */
export class MaskingError extends PolicyError {}
