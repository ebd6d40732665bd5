import {
  guardrailKind, type Action, type FileOperation, type Guardrail, type PolicyDocument, type UnreliableLineAction,
} from './policy-document.js';
import { analyzeShell, type ShellAnalysis, type ShellArg, type ShellCommand } from './shell-analyzer.js';
import { DEFAULT_MAX_COMMAND_BYTES } from './shell-parser.js';
import { escapeGlob, globMatch, globsIntersect, normaliseRuleGlob, resolvePathPattern, tokenizeGlob } from './shell-paths.js';

/**
 * Command and file guardrails: decisions on shell commands (SSH exec, shell lines, `kubectl exec`)
 * and on SFTP/SCP file operations, with the same shape as SQL decisions (guardrails.ts): the most
 * restrictive matching rule wins, ties go to the first rule, every refusal names its rule.
 */

/** What the policy says about one shell command text or file operation. */
export interface CommandDecision {
  action: Action;
  /**
   * the guardrail that decided, or `dynamicCommand`, `command-parse-error`, `command-too-large`,
   * `command-too-complex`, `command-parser-fault`, `path-invalid`; null when allowed
   */
  rule: string | null;
  /** for block and require_approval: what the client is told */
  reason: string;
  /** command names found (or the file operation), in order of appearance, each once */
  kinds: string[];
  /** the commands found, as short texts (`rm -rf /`), for the record (at most 32) */
  commands?: string[];
  /** true when part of the text could not be analysed (the reason says what; dynamicCommand applied) */
  dynamic?: boolean;
  /** an interactive line the gateway could not reconstruct reliably (interactive.unreliableLine applied) */
  unreliable?: boolean;
  /** allowed, but to be flagged in the record (`unreliableLine: allow_and_flag`) */
  flagged?: boolean;
  /**
   * the text is an incomplete shell input (an open quote, `if` without `fi`, a here-doc still
   * waiting for its end): an interactive shell will ask for more lines and run nothing yet
   */
  incomplete?: boolean;
  /** the working directory after the text, when a `cd` in it says (see ShellAnalysis.cwd) */
  cwd?: string | null;
  cached: boolean;
}

export interface CommandContext {
  /** the working directory, when known (relative paths are resolved against it) */
  cwd?: string | null;
  /** an interactive shell line (history expansion cannot be analysed) */
  interactive?: boolean;
  /**
   * exec commands: the session's input is not decided line by line (no terminal, e.g. `ssh host bash
   * < script`, `kubectl exec -i pod -- sh` without -t): a shell started with no script is dynamic
   */
  unseenInput?: boolean;
}

const SEVERITY: Record<Action, number> = { allow: 0, require_approval: 1, block: 2 };

interface CompiledCommandRule {
  name: string;
  action: Action;
  reason: string | undefined;
  commands: string[] | undefined;
  args: string[] | undefined;
  paths: string[] | undefined;
  redirects: string[] | undefined;
  pipedFrom: string[] | undefined;
  recursiveFunction: boolean;
  perCommand: boolean;
}

interface CompiledFileRule {
  name: string;
  action: Action;
  reason: string | undefined;
  operations: Set<FileOperation> | null;
  paths: string[];
}

export interface CompiledCommandPolicy {
  rules: CompiledCommandRule[];
  fileRules: CompiledFileRule[];
  dynamicCommand: Action;
  unreliableLine: UnreliableLineAction;
  maxCommandBytes: number;
}

function compileCommandRule(g: Guardrail): CompiledCommandRule {
  const m = g.match;
  return {
    name: g.name,
    action: g.action,
    reason: g.reason,
    commands: m.commands,
    args: m.args,
    paths: m.paths?.map(normaliseRulePath),
    redirects: m.redirects?.map(normaliseRulePath),
    pipedFrom: m.pipedFrom,
    recursiveFunction: m.recursiveFunction === true,
    perCommand: !!(m.commands || m.args || m.paths || m.pipedFrom),
  };
}

/** Rule paths get the same normalisation as the paths they are compared with (`/etc/../x` → `/x`). */
function normaliseRulePath(p: string): string {
  return normaliseRuleGlob(p);
}

const compiled = new WeakMap<PolicyDocument, CompiledCommandPolicy>();

export function compileCommandPolicy(doc: PolicyDocument): CompiledCommandPolicy {
  const hit = compiled.get(doc);
  if (hit) return hit;
  const guardrails = doc.guardrails ?? [];
  const c: CompiledCommandPolicy = {
    rules: guardrails.filter((g) => guardrailKind(g) === 'command').map(compileCommandRule),
    fileRules: guardrails.filter((g) => guardrailKind(g) === 'file').map((g) => ({
      name: g.name,
      action: g.action,
      reason: g.reason,
      operations: g.match.files!.operations ? new Set(g.match.files!.operations) : null,
      paths: g.match.files!.paths.map(normaliseRulePath),
    })),
    dynamicCommand: doc.dynamicCommand ?? 'block',
    unreliableLine: doc.interactive?.unreliableLine ?? 'require_approval',
    maxCommandBytes: doc.maxCommandBytes ?? DEFAULT_MAX_COMMAND_BYTES,
  };
  compiled.set(doc, c);
  return c;
}

function nameMatches(pattern: string, cmd: ShellCommand): boolean {
  if (pattern.includes('/')) return globsIntersect(pattern, escapeGlob(cmd.word.startsWith('/') ? resolvePathPattern(cmd.word, null, 'relative') : cmd.word));
  return globMatch(pattern, cmd.name);
}

const LONG_OPTION = /^--[A-Za-z0-9][A-Za-z0-9-]*$/;
const KEY_PATH = /^(-{0,2}[A-Za-z0-9_-]+=)(\/.*)$/;

/**
 * Whether an argument may be one the pattern names. Short options combine (`-rf` is `-r -f`) and
 * GNU long options may be abbreviated (`--rec` is `--recursive`) or carry a value (`--recursive=…`
 * is not a thing, but `--target-directory=/etc` is): each form is tried. An unknown argument matches.
 */
function argMatches(pattern: string, a: ShellArg, options: boolean): boolean {
  if (globsIntersect(pattern, a.pattern)) return true;
  // `of=/dev/sda`, `--output=/etc/x`: the path after `=` is compared normalised (`of=/dev//sda`)
  const kv = KEY_PATH.exec(pattern);
  if (kv && a.pattern.startsWith(kv[1]!) && a.pattern[kv[1]!.length] === '/') {
    if (globsIntersect(normaliseRuleGlob(kv[2]!), resolvePathPattern(a.pattern.slice(kv[1]!.length), null, 'relative'))) return true;
  }
  const v = a.value;
  if (v === null || !options) return false;
  if (/^-[A-Za-z0-9]{2,}$/.test(v)) {
    for (let i = 1; i < v.length; i++) if (globMatch(pattern, `-${v[i]}`)) return true;
  }
  if (v.startsWith('--') && v.length > 2) {
    const name = v.split('=')[0]!;
    if (LONG_OPTION.test(pattern) && name.length > 2 && pattern.startsWith(name)) return true;
    if (name !== v && globMatch(pattern, name)) return true;
  }
  return false;
}

function argsMatch(patterns: string[], args: ShellArg[]): boolean {
  let options = true;
  for (const a of args) {
    if (a.value === '--') { options = false; continue; }
    if (patterns.some((p) => argMatches(p, a, options))) return true;
  }
  return false;
}

function commandMatches(r: CompiledCommandRule, c: ShellCommand): boolean {
  if (r.commands && !r.commands.some((p) => nameMatches(p, c))) return false;
  if (r.args && !argsMatch(r.args, c.args)) return false;
  if (r.paths && !c.paths.some((p) => r.paths!.some((g) => globsIntersect(g, p)))) return false;
  if (r.redirects && !c.redirects.some((d) => d.write && r.redirects!.some((g) => globsIntersect(g, d.target)))) return false;
  if (r.pipedFrom && !c.pipedFrom.some((n) => r.pipedFrom!.some((g) => globMatch(g, n)))) return false;
  return true;
}

/** The command as a short text for reasons: `rm -rf /` (unknown words as `…`), at most 200 characters. */
export function commandText(c: ShellCommand): string {
  const words = [c.word, ...c.args.map((a) => a.value ?? '…')].map((w) => (/[\s'"\\]/.test(w) || w === '' ? JSON.stringify(w) : w));
  const t = words.join(' ');
  return t.length > 200 ? `${t.slice(0, 197)}...` : t;
}

function describe(r: CompiledCommandRule, c: ShellCommand | null, redirectTarget?: string): string {
  let what: string;
  if (c) {
    what = `command ${commandText(c)}`;
    if (c.via.length) what += ` (run by ${c.via.join(' → ')})`;
    if (r.pipedFrom) what += ` reading the output of ${c.pipedFrom.join(', ')}`;
  } else if (redirectTarget !== undefined) what = `a redirect to ${redirectTarget}`;
  else what = 'a function that calls itself (fork bomb)';
  return r.action === 'require_approval' ? `${what} requires approval by guardrail ${r.name}` : `${what} is blocked by guardrail ${r.name}`;
}

/** Turns an analysis into a decision. */
export function decideCommand(analysis: ShellAnalysis, policy: CompiledCommandPolicy): Omit<CommandDecision, 'cached'> {
  const kinds: string[] = [];
  for (const c of analysis.commands) if (!kinds.includes(c.name)) kinds.push(c.name);
  let action: Action = 'allow';
  let rule: string | null = null;
  let reason = 'allowed: no guardrail matched';
  const consider = (a: Action, r: string, why: string) => {
    if (SEVERITY[a] > SEVERITY[action]) { action = a; rule = r; reason = why; }
  };
  const f = analysis.failure;
  if (f) {
    const d: Omit<CommandDecision, 'cached'> = { action: 'block', rule: null, reason: '', kinds };
    if (f.kind === 'too-large') { d.rule = 'command-too-large'; d.reason = `command of ${f.bytes} bytes exceeds the limit of ${f.limit} bytes`; }
    else if (f.kind === 'too-complex') { d.rule = 'command-too-complex'; d.reason = `command too complex: ${f.message ?? `it nests about ${f.depth} levels deep; the gateway analyses at most ${f.limit}`}`; }
    else if (f.kind === 'fault') { d.rule = 'command-parser-fault'; d.reason = 'the command could not be analysed (parser fault)'; }
    else {
      d.action = policy.dynamicCommand;
      d.rule = 'command-parse-error';
      d.reason = `the command does not parse as a shell command: ${f.message}`;
      if (f.incomplete) d.incomplete = true;
    }
    if (d.action === 'allow') d.reason = `allowed by dynamicCommand: ${d.reason}`;
    return d;
  }
  for (const r of policy.rules) {
    if (SEVERITY[r.action] <= SEVERITY[action]) continue;
    if (r.recursiveFunction && analysis.recursiveFunctions.length === 0) continue;
    if (r.perCommand) {
      const c = analysis.commands.find((x) => commandMatches(r, x));
      if (c) consider(r.action, r.name, r.reason ?? describe(r, c));
    } else if (r.redirects) {
      const d = analysis.redirects.find((x) => x.write && r.redirects!.some((g) => globsIntersect(g, x.target)));
      if (d) consider(r.action, r.name, r.reason ?? describe(r, null, d.text ?? 'a path known only at run time'));
    } else if (r.recursiveFunction) {
      consider(r.action, r.name, r.reason ?? describe(r, null));
    }
  }
  if (analysis.dynamic.length) {
    consider(policy.dynamicCommand, 'dynamicCommand', `the command cannot be analysed: ${analysis.dynamic.map((d) => d.reason).join('; ')}`);
  }
  const out: Omit<CommandDecision, 'cached'> = { action, rule, reason, kinds };
  if (analysis.commands.length) out.commands = analysis.commands.slice(0, 32).map(commandText);
  if (analysis.dynamic.length) out.dynamic = true;
  if (analysis.cwd !== null) out.cwd = analysis.cwd;
  return out;
}

/**
 * Decides on one shell text: an exec command, a shell line, a `kubectl exec` command (its argv
 * joined with shellQuote). Pure; never throws; fails closed.
 */
export function evaluateCommand(text: string, doc: PolicyDocument, ctx: CommandContext = {}): CommandDecision {
  const policy = compileCommandPolicy(doc);
  const analysis = analyzeShell(text, { cwd: ctx.cwd ?? null, interactive: ctx.interactive, unseenInput: ctx.unseenInput, maxBytes: policy.maxCommandBytes });
  return { ...decideCommand(analysis, policy), cached: false };
}

/**
 * Decides on a command given as an argument vector (Kubernetes exec `command=` parameters, which
 * no shell parses): the words are quoted so the analysis sees exactly these words.
 */
export function evaluateArgv(argv: string[], doc: PolicyDocument, ctx: CommandContext = {}): CommandDecision {
  return evaluateCommand(argv.map(shellQuote).join(' '), doc, ctx);
}

/** Quotes a word for a POSIX shell so it stays one word, exactly as given. */
export function shellQuote(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A line of an interactive shell as the line model (line-editor.ts) reconstructed it. */
export interface ShellLineInput {
  text: string;
  reliable: boolean;
  /** why it is not reliable (history recall, Tab completion, …) */
  reasons?: string[];
}

/**
 * Decides on a line typed at an interactive shell (SSH shell, `kubectl exec -it`), when its Enter
 * is pressed. The text is decided as a command (history expansion counts as dynamic); a line the
 * model could not follow also gets the policy's `interactive.unreliableLine`: `block` and
 * `require_approval` as rule `unreliableLine` (the most restrictive decision wins), `allow_and_flag`
 * lets it run with `flagged: true`. An incomplete line (`incomplete: true`) runs nothing yet: let
 * its Enter through and decide on the joined text when it is complete.
 */
export function evaluateShellLine(line: ShellLineInput, doc: PolicyDocument, ctx: CommandContext = {}): CommandDecision {
  const d = evaluateCommand(line.text, doc, { ...ctx, interactive: true });
  if (line.reliable) return d;
  d.unreliable = true;
  const setting = compileCommandPolicy(doc).unreliableLine;
  const why = `the gateway could not reconstruct this line from the keystrokes (${(line.reasons ?? []).join(', ') || 'editing it does not follow'})`;
  if (setting === 'allow_and_flag') {
    d.flagged = true;
    return d;
  }
  if (SEVERITY[setting] > SEVERITY[d.action]) {
    d.action = setting;
    d.rule = 'unreliableLine';
    d.reason = setting === 'block' ? `${why}: blocked by the policy's interactive.unreliableLine` : `${why}: it requires approval (interactive.unreliableLine)`;
  }
  return d;
}

/** What the policy says about an interactive line the gateway could not reconstruct reliably. */
export function unreliableLineAction(doc: PolicyDocument): UnreliableLineAction {
  return compileCommandPolicy(doc).unreliableLine;
}

// ---- file operations (SFTP, SCP) ----

export interface FileOperationRequest {
  operation: FileOperation;
  /** the path as the client sent it (relative paths are resolved against `cwd`) */
  path: string;
  /** rename: the new path; symlink: the link's target */
  target?: string;
  /** the directory relative paths start from (the login's home for SFTP), when known */
  cwd?: string | null;
}

/**
 * Decides on one file operation. Paths are normalised (`//`, `/./`, `a/../`; `..` never climbs
 * above `/`); a relative path with no known `cwd` may be anywhere. Operations that touch two
 * paths are decided on both: a rename is a `rename` and `remove` of its source and a `rename` and
 * `write` of its target (moving a file into `/etc` writes there); a symlink is a `symlink` and
 * `write` of the link and a `symlink` and `read` of what it points to. `setstat` (chmod, chown,
 * truncate) also counts as `write`.
 */
export function evaluateFileOperation(req: FileOperationRequest, doc: PolicyDocument): CommandDecision {
  const policy = compileCommandPolicy(doc);
  const kinds = [req.operation];
  const checks: { path: string; ops: FileOperation[] }[] = [];
  const primary: FileOperation[] =
    req.operation === 'rename' ? ['rename', 'remove'] : req.operation === 'symlink' ? ['symlink', 'write'] : req.operation === 'setstat' ? ['setstat', 'write'] : [req.operation];
  checks.push({ path: req.path, ops: primary });
  if (req.target !== undefined) checks.push({ path: req.target, ops: req.operation === 'symlink' ? ['symlink', 'read'] : ['rename', 'write'] });
  let action: Action = 'allow';
  let rule: string | null = null;
  let reason = 'allowed: no guardrail matched';
  for (const c of checks) {
    if (typeof c.path !== 'string' || c.path.length === 0 || c.path.includes('\0') || c.path.length > 4096) {
      return { action: 'block', rule: 'path-invalid', reason: 'the path is empty, too long or holds a NUL byte', kinds, cached: false };
    }
    const resolved = resolvePathPattern(escapeGlob(c.path), req.cwd ?? null, 'anywhere');
    const tokens = tokenizeGlob(resolved);
    for (const r of policy.fileRules) {
      if (SEVERITY[r.action] <= SEVERITY[action]) continue;
      if (r.operations && !c.ops.some((o) => r.operations!.has(o))) continue;
      if (!r.paths.some((p) => globsIntersect(p, tokens))) continue;
      action = r.action;
      rule = r.name;
      const shown = resolved.startsWith('/') && !resolved.includes('*') ? resolved : c.path;
      reason = r.reason ?? `${req.operation} of ${shown} ${r.action === 'require_approval' ? 'requires approval by' : 'is blocked by'} guardrail ${r.name}`;
    }
  }
  return { action, rule, reason, kinds, cached: false };
}
