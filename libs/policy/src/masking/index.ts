/**
 * The masking engine. A plan is made once per result set from its RowDescription: each column is
 * either masked whole by the first column rule that covers it (by name, table.column, or type),
 * scanned by content detectors (text-like columns no column rule covers), or left alone.
 *
 * Strategies: `redact` → the rule's token (default `[REDACTED]`); `partial` → letters and digits
 * replaced by `*` except the last `keepLast` (default 4; all of them when the value has no more
 * than that), separators kept (`***-**-6789`); an email keeps its first character and its domain
 * (`a****@example.com`); `hash` → `h:` + 16 hex chars of HMAC-SHA256 under the tenant's key (cards,
 * phones and SSNs are hashed as digits only, emails lower-cased, so joins work across formats);
 * `null` → SQL NULL (a detector hit with `null` nulls the whole value).
 * JSON columns stay valid JSON: whole-value masks become JSON strings, replacements inside JSON
 * strings are escaped.
 *
 * Files: rules.ts (compiled rules, which rule covers a column), column-plan.ts (each column's
 * treatment), strategies.ts and hash-cache.ts (one value), values.ts (text, JSON, binary arrays),
 * plan.ts (DataRows, rows and COPY lines of one result set).
 */
export { createMaskingPlan, explainMaskingPlan } from './plan.js';
export { maskText } from './values.js';
export { partialMask } from './strategies.js';
export type { ResultField, MaskingOptions, MaskingPlan, MaskingRefusal, RowValues, RowOutput } from './masking.types.js';
