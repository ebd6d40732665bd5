import { z } from 'zod';
import { DEFAULT_REFUSED_SETTINGS, FILE_OPERATIONS, type FileOperation } from '@portcullis/protocol';
import { PolicyValidationError, type PolicyIssue } from './errors.js';
import { STATEMENT_VERBS, normalizeKind } from './statement-kinds.js';
import { BUILTIN_DETECTOR_NAMES } from './detectors.js';
import { kubernetesMatchSchema, kubernetesSettingsSchema } from './kubernetes/kube-guardrails.js';
import { sshSettingsSchema } from './ssh-settings.js';

/**
 * The policy document (CONTRACT.md "Policy document"), validated once at the edge. Inner objects
 * are strict: a misspelt key inside a guardrail or masking rule would otherwise widen or silently
 * disable a rule. Unknown top-level keys are dropped so documents can carry metadata.
 */

export const ACTIONS = ['allow', 'block', 'require_approval'] as const;
export const actionSchema = z.enum(ACTIONS);
/** `allow_and_flag`: the line runs and its record says it was not reliably reconstructed */
export const UNRELIABLE_LINE_ACTIONS = ['require_approval', 'block', 'allow_and_flag'] as const;
export type UnreliableLineAction = (typeof UNRELIABLE_LINE_ACTIONS)[number];
export type Action = z.infer<typeof actionSchema>;

const identifierList = z.array(z.string().trim().min(1, 'must not be empty')).min(1, 'must list at least one name');

const statementListSchema = z
  .array(z.string().min(1, 'must not be empty'))
  .min(1, 'must list at least one statement kind')
  .transform((list, ctx) =>
    list.map((s, i) => {
      const kind = normalizeKind(s);
      const verb = kind.split(' ')[0];
      if (!/^[A-Z]+( [A-Z]+)*$/.test(kind) || !STATEMENT_VERBS.has(verb)) {
        ctx.addIssue({ code: 'custom', path: [i], message: `unknown statement kind "${s}"` });
      }
      return kind;
    }),
  );

const globList = z.array(z.string().min(1, 'must not be empty').max(4096)).min(1, 'must list at least one pattern');


export const fileMatchSchema = z.strictObject({
  /** the operations the rule covers (default: every one) */
  operations: z.array(z.enum(FILE_OPERATIONS)).min(1).optional(),
  /** path globs: `/etc/**`, `**\/*.pem`; paths are normalised first (`..` cannot climb out of `/`) */
  paths: globList,
});

/** Keys of each kind of guardrail: a guardrail matches one kind of command only. */
export const SQL_MATCH_KEYS = ['statements', 'tables', 'functions', 'unbounded', 'copy', 'rowsAffectedOver'] as const;
export const COMMAND_MATCH_KEYS = ['commands', 'args', 'paths', 'redirects', 'pipedFrom', 'recursiveFunction'] as const;
export const FILE_MATCH_KEYS = ['files'] as const;

export const guardrailMatchSchema = z
  .strictObject({
    /** statement kinds, e.g. `DROP`, `CREATE ROLE`; `DROP` covers `DROP TABLE`, `DROP ROLE`, … */
    statements: statementListSchema.optional(),
    /** tables, `name` (any schema) or `schema.name`, quoted or not */
    tables: identifierList.optional(),
    /** called functions, `name` (any schema) or `schema.name` */
    functions: identifierList.optional(),
    /** DELETE/UPDATE/MERGE with no WHERE or a WHERE that does not bound the rows (`true`, `1=1`, no column) */
    unbounded: z.boolean().optional(),
    /** COPY to/from a server-side program, a server file, or either */
    copy: z.enum(['program', 'file', 'any']).optional(),
    /**
     * A consequence: the write is measured at run time (run inside a savepoint, rows counted) and the
     * guardrail acts only when it changed more rows than this (docs/consequence-approvals.md).
     */
    rowsAffectedOver: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    /** shell commands by name (globs: `mkfs*`; with a `/`, the command's path), from a real parse of the line */
    commands: globList.optional(),
    /** any argument matches one of these globs; `-r` also matches a cluster `-fr`, `--recursive` its abbreviation `--rec` */
    args: globList.optional(),
    /** any operand, as a normalised path, may be a path these globs match (`/`, `/*`, `/etc/**`) */
    paths: globList.optional(),
    /** any redirect that writes (`>`, `>>`, `&>`, …) to a path these globs match */
    redirects: globList.optional(),
    /** the command reads the output of one of these commands (an earlier pipeline stage, `<(…)`): `curl … | sh` */
    pipedFrom: globList.optional(),
    /** the text defines a function that calls itself (fork bombs: `:(){ :|:& };:`) */
    recursiveFunction: z.literal(true).optional(),
    /** SFTP/SCP file operations on paths */
    files: fileMatchSchema.optional(),
    /** Kubernetes API requests by their attributes (kubernetes/kube-guardrails.ts); never matches SQL */
    kubernetes: kubernetesMatchSchema.optional(),
  })
  .refine((m) => Object.values(m).some((v) => v !== undefined), {
    message: 'match needs at least one condition (SQL: statements, tables, functions, unbounded, copy, rowsAffectedOver; commands: commands, args, paths, redirects, pipedFrom, recursiveFunction; files; kubernetes)',
  })
  .superRefine((m, ctx) => {
    const kinds = [
      SQL_MATCH_KEYS.some((k) => m[k] !== undefined) && 'SQL (statements, tables, functions, unbounded, copy, rowsAffectedOver)',
      COMMAND_MATCH_KEYS.some((k) => m[k] !== undefined) && 'commands (commands, args, paths, redirects, pipedFrom, recursiveFunction)',
      FILE_MATCH_KEYS.some((k) => m[k] !== undefined) && 'files',
      m.kubernetes !== undefined && 'kubernetes',
    ].filter(Boolean);
    if (kinds.length > 1) ctx.addIssue({ code: 'custom', message: `a guardrail matches one kind of command; this one mixes ${kinds.join(' and ')}` });
  });

/** The statement kinds a consequence can measure (their command tags carry a row count). */
export const MEASURED_KINDS = ['DELETE', 'UPDATE', 'INSERT', 'MERGE'] as const;

/** How far a re-measured count may move from the approved one: a number of rows, or a percentage of the approved count (`"10%"`). */
export const toleranceSchema = z.union([
  z.number().int().min(0),
  z.string().regex(/^\d+(\.\d+)?%$/, 'a tolerance is a number of rows or a percentage such as "10%"'),
]);

export const guardrailSchema = z
  .strictObject({
    name: z.string().trim().min(1),
    action: actionSchema,
    match: guardrailMatchSchema,
    /** shown to the client when the guardrail blocks or holds a statement */
    reason: z.string().min(1).max(1000).optional(),
    /** consequence rules: how many of the affected rows the approver is shown, masked (default 20; 0: none) */
    sampleRows: z.number().int().min(0).max(1000).optional(),
    /** consequence rules: an approved write whose re-measured count moved further than this is held again (default 0) */
    tolerance: toleranceSchema.optional(),
  })
  .superRefine((g, ctx) => {
    const m = g.match;
    if (m.rowsAffectedOver === undefined) {
      if (g.sampleRows !== undefined) ctx.addIssue({ code: 'custom', path: ['sampleRows'], message: 'sampleRows applies only to a guardrail with match.rowsAffectedOver' });
      if (g.tolerance !== undefined) ctx.addIssue({ code: 'custom', path: ['tolerance'], message: 'tolerance applies only to a guardrail with match.rowsAffectedOver' });
      return;
    }
    if (g.action === 'allow') ctx.addIssue({ code: 'custom', path: ['action'], message: 'a guardrail with rowsAffectedOver must block or require approval' });
    for (const k of ['functions', 'unbounded', 'copy'] as const) {
      if (m[k] !== undefined) ctx.addIssue({ code: 'custom', path: ['match', k], message: `rowsAffectedOver combines only with statements and tables, not ${k}` });
    }
    m.statements?.forEach((s, i) => {
      if (!(MEASURED_KINDS as readonly string[]).includes(s)) {
        ctx.addIssue({ code: 'custom', path: ['match', 'statements', i], message: `rowsAffectedOver measures only ${MEASURED_KINDS.join(', ')}, not ${s}` });
      }
    });
  });

export const MASKING_STRATEGIES = ['redact', 'partial', 'hash', 'null'] as const;

export const maskingRuleSchema = z
  .strictObject({
    name: z.string().trim().min(1),
    /** `column`, `table.column` or `schema.table.column` */
    columns: identifierList.optional(),
    /** type names (`text`, `varchar`, `jsonb`, …) */
    types: identifierList.optional(),
    /** built-in (CREDIT_CARD, EMAIL, US_SSN, PHONE, IBAN, AWS_ACCESS_KEY, JWT, IPV4) or custom detector names */
    detectors: identifierList.optional(),
    strategy: z.enum(MASKING_STRATEGIES),
    /** `partial`: characters kept at the end (default 4) */
    keepLast: z.number().int().min(0).max(64).optional(),
    /** `redact`: the replacement (default `[REDACTED]`) */
    token: z.string().max(200).optional(),
  })
  .refine((r) => r.columns || r.types || r.detectors, { message: 'a masking rule needs columns, types or detectors' });

export const customDetectorSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'detector names are letters, digits and _'),
  pattern: z.string().min(1).max(2000),
  /** RegExp flags other than g/y (added as needed): i, m, s, u */
  flags: z.string().regex(/^[imsu]*$/, 'flags may only be i, m, s, u').optional(),
});

export const approvalSchema = z.strictObject({
  approvers: z.array(z.string().min(1)).default([]),
  timeoutSeconds: z.number().int().min(1).max(7 * 24 * 3600).default(300),
  webhook: z.strictObject({ url: z.url({ protocol: /^https?$/ }) }).optional(),
});

/** Most rows and bytes a statement's kept result may hold (a session event must stay well under a NATS message). */
export const MAX_RECORDED_ROWS = 1000;
export const MAX_RECORDED_BYTES = 256 * 1024;

/**
 * `recording.results`: how much of each result the gateway keeps in the session record — exactly what
 * the client received (after masking), the first `rows` rows and at most `bytes` bytes per statement —
 * or `off` (also `false`), the default: results are recorded as counts only.
 */
export const resultRecordingSchema = z.union([
  z.literal('off'),
  z.literal(false).transform(() => 'off' as const),
  z.strictObject({
    rows: z.number().int().min(1).max(MAX_RECORDED_ROWS),
    bytes: z.number().int().min(1).max(MAX_RECORDED_BYTES),
  }),
]);

export const recordingSchema = z.strictObject({
  results: resultRecordingSchema.default('off'),
});

export const policyDocumentSchema = z
  .object({
    name: z.string().trim().min(1),
    description: z.string().optional(),
    guardrails: z.array(guardrailSchema).default([]),
    /** action for SQL that cannot be analysed (EXECUTE of a built string, unparsable input) */
    dynamicSql: actionSchema.default('block'),
    /** action for shell commands that cannot be analysed (eval of built text, a command name from a variable, source, unparsable) */
    dynamicCommand: actionSchema.default('block'),
    /** interactive shells (SSH, kubectl exec -it): what happens to a line the gateway could not reconstruct from the keystrokes */
    interactive: z
      .strictObject({ unreliableLine: z.enum(UNRELIABLE_LINE_ACTIONS).default('require_approval') })
      .default({ unreliableLine: 'require_approval' }),
    /** shell commands (exec commands, shell lines) larger than this are refused (default 64 KiB) */
    maxCommandBytes: z.number().int().min(64).max(16 * 1024 * 1024).optional(),
    masking: z.array(maskingRuleSchema).default([]),
    detectors: z.array(customDetectorSchema).optional(),
    approval: approvalSchema.optional(),
    /** statements larger than this are refused (default 1 MiB) */
    maxStatementBytes: z.number().int().min(64).max(64 * 1024 * 1024).optional(),
    /** settings a client may not give at startup (parameters, `options`): the session is refused, never the setting dropped */
    refusedSettings: z.array(z.string().trim().min(1)).default([...DEFAULT_REFUSED_SETTINGS]),
    /** what the session record keeps besides statements and decisions (see resultRecordingSchema) */
    recording: recordingSchema.optional(),
    /** Kubernetes settings (Secret redaction); guardrails on Kubernetes requests live in `guardrails` */
    kubernetes: kubernetesSettingsSchema.optional(),
    /** SSH settings: environment variables a client may set, port forwarding destinations (ssh-settings.ts) */
    ssh: sshSettingsSchema.optional(),
  })
  .superRefine((doc, ctx) => {
    const seen = new Set<string>();
    doc.guardrails.forEach((g, i) => {
      if (seen.has(g.name)) ctx.addIssue({ code: 'custom', path: ['guardrails', i, 'name'], message: `duplicate guardrail name "${g.name}"` });
      seen.add(g.name);
    });
    const detectorNames = new Set<string>(BUILTIN_DETECTOR_NAMES);
    doc.detectors?.forEach((d, i) => {
      if (detectorNames.has(d.name)) {
        ctx.addIssue({ code: 'custom', path: ['detectors', i, 'name'], message: `detector "${d.name}" is already defined` });
      }
      detectorNames.add(d.name);
      try {
        const re = new RegExp(d.pattern, `${d.flags ?? ''}g`);
        if (re.test('')) ctx.addIssue({ code: 'custom', path: ['detectors', i, 'pattern'], message: 'pattern must not match the empty string' });
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['detectors', i, 'pattern'], message: `invalid regular expression: ${(err as Error).message}` });
      }
    });
    const ruleNames = new Set<string>();
    doc.masking.forEach((r, i) => {
      if (ruleNames.has(r.name)) ctx.addIssue({ code: 'custom', path: ['masking', i, 'name'], message: `duplicate masking rule name "${r.name}"` });
      ruleNames.add(r.name);
      r.detectors?.forEach((d, j) => {
        if (!detectorNames.has(d)) ctx.addIssue({ code: 'custom', path: ['masking', i, 'detectors', j], message: `unknown detector "${d}"` });
      });
    });
  });

export type PolicyDocument = z.output<typeof policyDocumentSchema>;
export type PolicyDocumentInput = z.input<typeof policyDocumentSchema>;
export type Guardrail = PolicyDocument['guardrails'][number];
export type MaskingRule = PolicyDocument['masking'][number];
export type CustomDetector = NonNullable<PolicyDocument['detectors']>[number];
export type ResultRecording = z.output<typeof resultRecordingSchema>;

/** The rows/bytes a policy keeps of each result, or null when results are recorded as counts only. */
export function resultRecordingOf(doc: unknown): { rows: number; bytes: number } | null {
  const r = (doc as { recording?: { results?: unknown } } | null)?.recording?.results;
  if (!r || typeof r !== 'object') return null;
  const { rows, bytes } = r as { rows?: unknown; bytes?: unknown };
  return typeof rows === 'number' && typeof bytes === 'number' && rows > 0 && bytes > 0 ? { rows, bytes } : null;
}

export { FILE_OPERATIONS, type FileOperation };
export type GuardrailKind = 'sql' | 'command' | 'file' | 'kubernetes' | 'other';

/**
 * Which kind of command a guardrail matches (a validated guardrail has exactly one kind). A kind is
 * named by its own keys, never by the absence of others: a rule of a kind an evaluator does not know
 * (`other`) must not become a match-everything rule there.
 */
export function guardrailKind(g: Guardrail): GuardrailKind {
  const m = g.match as Record<string, unknown>;
  if (SQL_MATCH_KEYS.some((k) => m[k] !== undefined)) return 'sql';
  if (COMMAND_MATCH_KEYS.some((k) => m[k] !== undefined)) return 'command';
  if (FILE_MATCH_KEYS.some((k) => m[k] !== undefined)) return 'file';
  if (m.kubernetes !== undefined) return 'kubernetes';
  return 'other';
}

function issuePath(path: readonly PropertyKey[]): string {
  return path.length ? path.map(String).join('.') : '(root)';
}

/** Validates a policy document or throws PolicyValidationError naming each bad field by path. */
export function parsePolicyDocument(input: unknown): PolicyDocument {
  const r = policyDocumentSchema.safeParse(input);
  if (r.success) return r.data;
  const issues: PolicyIssue[] = r.error.issues.map((i) => ({ path: issuePath(i.path), message: i.message }));
  throw new PolicyValidationError(issues, { cause: r.error });
}
