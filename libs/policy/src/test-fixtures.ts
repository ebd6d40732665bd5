import { parsePolicyDocument, type PolicyDocument } from './policy-document.js';

/** The CONTRACT.md example policy plus the extras the tests exercise. Not exported from index.ts. */
export function contractPolicy(extra: Partial<Record<string, unknown>> = {}): PolicyDocument {
  return parsePolicyDocument({
    name: 'default',
    guardrails: [
      { name: 'no-destructive-ddl', action: 'block', match: { statements: ['DROP', 'TRUNCATE', 'ALTER', 'GRANT', 'REVOKE', 'CREATE ROLE', 'ALTER ROLE'] } },
      { name: 'no-session-killing', action: 'block', match: { functions: ['pg_terminate_backend', 'pg_cancel_backend'] } },
      { name: 'no-copy-program', action: 'block', match: { copy: 'program' } },
      { name: 'no-server-files', action: 'block', match: { copy: 'file' }, reason: 'server-side files are off limits' },
      { name: 'bulk-writes', action: 'require_approval', match: { statements: ['DELETE', 'UPDATE'], unbounded: true } },
      { name: 'secrets-need-approval', action: 'require_approval', match: { tables: ['vault.secrets'] } },
      { name: 'payroll-is-read-only', action: 'block', match: { statements: ['INSERT', 'UPDATE', 'DELETE', 'MERGE'], tables: ['"HR"."Payroll"'] } },
    ],
    dynamicSql: 'block',
    masking: [
      { name: 'emails', columns: ['email'], strategy: 'partial' },
      { name: 'pii', detectors: ['CREDIT_CARD', 'US_SSN', 'EMAIL', 'PHONE', 'IBAN', 'AWS_ACCESS_KEY', 'JWT'], strategy: 'redact' },
    ],
    approval: { approvers: ['approvers'], timeoutSeconds: 300 },
    ...extra,
  });
}
