import {
  DEFAULT_MAX_COMMAND_BYTES, DEFAULT_MAX_SHELL_DEPTH, isParseFailure, parseShell, walkShell,
  type ShAssign, type ShBinaryCmd, type ShBlock, type ShCallExpr, type ShCmdSubst, type ShDblQuoted, type ShDeclClause,
  type ShFile, type ShFuncDecl, type ShLit, type ShNode, type ShProcSubst, type ShRedirect, type ShSglQuoted, type ShStmt,
  type ShTimeClause, type ShWord, type ShellParseFailure,
} from './shell-parser.js';
import { ANY_PATH, escapeGlob, hasGlob, resolvePathPattern } from './shell-paths.js';

/**
 * Shell command analysis (protocol-neutral: SSH exec and shell lines, `kubectl exec` commands).
 * From a real bash parse (shell-parser.ts) it lists every simple command that the text can run —
 * in lists, pipelines, subshells, blocks, functions, loops, `$(…)`, backticks, `<(…)`, here-doc
 * bodies — and unwraps the commands that run other commands (`sudo`, `env`, `xargs`, `timeout`,
 * `nice`, `nohup`, `exec`, `command`, `busybox`, `find -exec`, …) and the strings that are scripts
 * (`bash -c '…'`, `sh -c`, `su -c`, `eval '…'` of constant text, `watch`, `trap`, `alias`).
 *
 * Words are resolved as bash would without running anything: quotes removed, `\x` escapes and
 * `$'…'` decoded, `/bin/rm` named `rm`. A word the gateway cannot know (a variable, a substitution)
 * is the glob `**` — it may be anything — so rules on arguments and paths match it (fail closed).
 * What cannot be analysed at all — a command *name* that comes from an expansion or a glob, `eval`
 * of built text, `source` of a file, history expansion in an interactive shell — is listed in
 * `dynamic`, for the policy's `dynamicCommand` action.
 */

/** One word of a command, after quote removal. */
export interface ShellArg {
  /** the word's text when it is fully known and not a glob, else null */
  value: string | null;
  /** the word as a glob: literal characters escaped, the shell's own globs kept, unknown parts `**` */
  pattern: string;
}

export interface ShellRedirect {
  /** `>`, `>>`, `>|`, `<>`, `&>`, `&>>`, `>&` (to a file), `<`, `<<<`, `<<`, `<<-` */
  op: string;
  /** the file descriptor written before the operator, if any */
  fd: number | null;
  /** the target as a path pattern (resolved against the working directory); `**` when unknown */
  target: string;
  /** the target word as written (after quote removal), or null when unknown */
  text: string | null;
  /** whether the redirect writes (or truncates) its target */
  write: boolean;
  /** the command it belongs to (null: a redirect alone, e.g. `> /etc/motd`) */
  command: string | null;
}

export interface ShellCommand {
  /** the command's name: the last path component of its first word (`/usr/bin/rm` → `rm`) */
  name: string;
  /** the first word as resolved (`/usr/bin/rm`) */
  word: string;
  /** the other words */
  args: ShellArg[];
  /** path patterns of the operands (arguments that are not options, and `key=/path` values), resolved */
  paths: string[];
  /** redirects of the statement the command is in */
  redirects: ShellRedirect[];
  /** the wrappers it was found inside, outermost first: `sudo`, `bash -c`, `xargs`, `find -exec` … */
  via: string[];
  /** names of the commands whose output it reads: earlier stages of its pipeline, `<(…)` and `<<< $(…)` */
  pipedFrom: string[];
  /** true when more arguments come at run time (xargs, find -exec {}): an unknown argument is among args */
  openArgs: boolean;
}

export interface ShellDynamic {
  reason: string;
}

export interface ShellAnalysis {
  commands: ShellCommand[];
  /** every redirect, in order */
  redirects: ShellRedirect[];
  /** what cannot be analysed; non-empty means the policy's dynamicCommand applies */
  dynamic: ShellDynamic[];
  /** functions the text defines that call themselves (`:(){ :|:& };:`) */
  recursiveFunctions: string[];
  /** the text was not analysed */
  failure: ShellParseFailure | null;
  /** the working directory after the text, as far as `cd` in it says (null: as it was, unknown) */
  cwd: string | null;
}

export interface ShellAnalysisOptions {
  /** the working directory the text runs in, when the caller knows it (null/undefined: unknown) */
  cwd?: string | null;
  /** an interactive shell: history expansion (`!!`, `!rm`, `^a^b`) cannot be analysed */
  interactive?: boolean;
  /**
   * the command's input is not decided line by line (an exec without a terminal): a shell started
   * with no script, which would read its commands from it, cannot be analysed
   */
  unseenInput?: boolean;
  maxBytes?: number;
  maxDepth?: number;
  /** how deep `bash -c '…'` and the like may nest (default 8) */
  maxNesting?: number;
  /** most commands one text may yield (default 4096) */
  maxCommands?: number;
}

const DEFAULT_MAX_NESTING = 8;
const DEFAULT_MAX_COMMANDS = 4096;

class TooComplex extends Error {}

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'rbash', 'busybox-sh', 'yash', 'posh', 'fish', 'tcsh', 'csh']);

// redirect and binary-operator codes of the parser build, learnt once from the parser itself
let OPS: { redir: Map<number, string>; pipe: Set<number> } | null = null;

function ops(): { redir: Map<number, string>; pipe: Set<number> } {
  if (OPS) return OPS;
  const redir = new Map<number, string>();
  for (const op of ['>', '>>', '<', '<>', '>|', '&>', '&>>', '>&', '<&', '<<<']) {
    const f = parseShell(`x ${op} a`);
    if (!isParseFailure(f)) redir.set(f.Stmts[0]!.Redirs[0]!.Op, op);
  }
  for (const op of ['<<', '<<-']) {
    const f = parseShell(`x ${op} E\nE\n`);
    if (!isParseFailure(f)) redir.set(f.Stmts[0]!.Redirs[0]!.Op, op);
  }
  const pipe = new Set<number>();
  for (const op of ['|', '|&']) {
    const f = parseShell(`a ${op} b`);
    if (!isParseFailure(f)) pipe.add((f.Stmts[0]!.Cmd as ShBinaryCmd).Op);
  }
  OPS = { redir, pipe };
  return OPS;
}

const WRITE_OPS = new Set(['>', '>>', '>|', '<>', '&>', '&>>', '>&']);
const INPUT_OPS = new Set(['<', '<<<', '<<', '<<-', '<>']);

interface Ctx {
  depth: number;
  via: string[];
  pipedFrom: string[];
  /**
   * What the command's standard input is, when a shell may read its commands from it: a pipe or a
   * here-doc/here-string (`text` when known: a constant here-doc, `echo '…' |`), a file (`<`), or
   * nothing said (the session's own input).
   */
  stdin?: { from: 'pipe' | 'heredoc' | 'file'; text: string | null };
}

class Analyzer {
  readonly commands: ShellCommand[] = [];
  readonly redirects: ShellRedirect[] = [];
  readonly dynamic: ShellDynamic[] = [];
  readonly functions = new Map<string, Set<string>>();
  cwd: string | null;
  private readonly op = ops();
  private readonly maxNesting: number;
  private readonly maxCommands: number;
  /** names found since the mark, for pipelines and function bodies */
  private found: string[] = [];

  constructor(readonly opts: ShellAnalysisOptions) {
    this.cwd = opts.cwd ?? null;
    this.maxNesting = opts.maxNesting ?? DEFAULT_MAX_NESTING;
    this.maxCommands = opts.maxCommands ?? DEFAULT_MAX_COMMANDS;
  }

  private type(n: ShNode | null | undefined): string {
    return n ? n.type : '';
  }

  addDynamic(reason: string): void {
    if (this.dynamic.length < 64 && !this.dynamic.some((d) => d.reason === reason)) this.dynamic.push({ reason });
  }

  /** Parses nested script text (`bash -c`) and visits it. */
  source(src: string, ctx: Ctx, what: string): void {
    if (ctx.depth + 1 > this.maxNesting) throw new TooComplex(`${what} nests more than ${this.maxNesting} levels`);
    const file = parseShell(src, this.opts.maxBytes ?? DEFAULT_MAX_COMMAND_BYTES, this.opts.maxDepth ?? DEFAULT_MAX_SHELL_DEPTH);
    if (isParseFailure(file)) {
      if (file.kind === 'too-complex' || file.kind === 'too-large') throw new TooComplex(`the script of ${what} is too complex`);
      this.addDynamic(`the script of ${what} does not parse: ${file.kind === 'syntax' ? file.message : 'parser fault'}`);
      return;
    }
    this.stmts(file.Stmts, { ...ctx, depth: ctx.depth + 1 });
  }

  file(f: ShFile): void {
    this.stmts(f.Stmts, { depth: 0, via: [], pipedFrom: [] });
  }

  stmts(list: ShStmt[] | null | undefined, ctx: Ctx): void {
    for (const s of list ?? []) this.stmt(s, ctx);
  }

  stmt(s: ShStmt, ctx: Ctx): void {
    // redirects first: their substitutions run before the command, and the command keeps them
    const redirs: ShellRedirect[] = [];
    const inputFrom: string[] = [];
    for (const r of s.Redirs ?? []) {
      const before = this.found.length;
      const rd = this.redirect(r, ctx);
      if (rd) redirs.push(rd);
      if (rd && INPUT_OPS.has(rd.op)) inputFrom.push(...this.found.slice(before));
    }
    const cmd = s.Cmd;
    let inner: Ctx = inputFrom.length ? { ...ctx, pipedFrom: [...ctx.pipedFrom, ...inputFrom] } : ctx;
    const stdin = this.stdinOf(s.Redirs ?? []);
    if (stdin) inner = { ...inner, stdin };
    const firstCommand = this.commands.length;
    if (cmd) this.command(cmd, inner, redirs);
    const owner = this.commands.length > firstCommand ? this.commands[firstCommand]! : null;
    for (const rd of redirs) {
      rd.command = owner?.name ?? null;
      this.redirects.push(rd);
    }
  }

  private command(cmd: ShNode, ctx: Ctx, redirs: ShellRedirect[]): void {
    const t = this.type(cmd);
    switch (t) {
      case 'CallExpr': return this.call(cmd as ShCallExpr, ctx, redirs);
      case 'BinaryCmd': {
        const b = cmd as ShBinaryCmd;
        if (this.op.pipe.has(b.Op)) {
          const mark = this.found.length;
          const echoed = this.echoText(b.X);
          this.stmt(b.X, ctx);
          const upstream = this.found.slice(mark);
          this.stmt(b.Y, { ...ctx, pipedFrom: [...ctx.pipedFrom, ...upstream], stdin: { from: 'pipe', text: echoed } });
        } else {
          this.stmt(b.X, ctx);
          this.stmt(b.Y, ctx);
        }
        return;
      }
      case 'Subshell': case 'Block': return this.stmts((cmd as ShBlock).Stmts, ctx);
      case 'FuncDecl': {
        const f = cmd as ShFuncDecl;
        const mark = this.found.length;
        this.stmt(f.Body, ctx);
        const called = new Set(this.found.slice(mark));
        this.functions.set(f.Name.Value, called);
        return;
      }
      case 'TimeClause': {
        const tc = cmd as ShTimeClause;
        if (tc.Stmt) this.stmt(tc.Stmt, ctx);
        return;
      }
      case 'DeclClause': return this.decl(cmd as ShDeclClause, ctx, redirs);
      default:
        // if/while/until/for/case/select/[[ ]]/(( ))/let/coproc: every statement and substitution
        // inside, wherever the grammar puts it
        this.children(cmd, ctx);
    }
  }

  /** Visits every statement and substitution below `node` (not `node` itself). */
  private children(node: ShNode, ctx: Ctx): void {
    walkShell(node, (n) => {
      const t = n.type;
      if (t === 'Stmt') { this.stmt(n as ShStmt, ctx); return false; }
      if (t === 'CmdSubst' || t === 'ProcSubst') { this.stmts((n as ShCmdSubst).Stmts, ctx); return false; }
      if (t === 'Assign') { this.assignCheck(n as ShAssign, ctx); return true; }
      return true;
    });
  }

  /** The substitutions inside a word run (they are commands too); returns the names they ran. */
  private substitutions(w: ShNode | null | undefined, ctx: Ctx): { names: string[]; procIn: string[] } {
    const names: string[] = [];
    const procIn: string[] = [];
    if (!w) return { names, procIn };
    const visit = (n: ShNode): boolean => {
      const t = n.type;
      if (t === 'CmdSubst' || t === 'ProcSubst') {
        const mark = this.found.length;
        this.stmts((n as ShCmdSubst).Stmts, ctx);
        const got = this.found.slice(mark);
        names.push(...got);
        // <(…) is read by the command it is given to: that command reads the substitution's output
        if (t === 'ProcSubst' && this.procSubstReads(n as ShProcSubst)) procIn.push(...got);
        return false;
      }
      return true;
    };
    if (visit(w)) walkShell(w, visit);
    return { names, procIn };
  }

  private procSubstReads(p: ShProcSubst): boolean {
    // `<(` and `>(` share one node type; the operator is the first character of the node's text
    return p.Op === PROC_IN_OP;
  }

  private redirect(r: ShRedirect, ctx: Ctx): ShellRedirect | null {
    const op = this.op.redir.get(r.Op) ?? '?';
    this.substitutions(r.Word, ctx);
    if (r.Hdoc) this.substitutions(r.Hdoc, ctx);
    const fd = r.N ? Number(r.N.Value) : null;
    if (op === '<<' || op === '<<-') return { op, fd, target: '', text: null, write: false, command: null };
    const arg = this.word(r.Word);
    // `2>&1`, `>&-`: a descriptor, not a file
    if ((op === '>&' || op === '<&') && arg.value !== null && /^(\d+-?|-)$/.test(arg.value)) return null;
    const write = WRITE_OPS.has(op) || op === '?';
    const target = op === '<<<' ? '' : this.path(arg);
    return { op, fd: Number.isFinite(fd) ? fd : null, target, text: arg.value, write, command: null };
  }

  /** Standard input set by a statement's redirects (the last one wins, as in the shell). */
  private stdinOf(raw: ShRedirect[]): Ctx['stdin'] | undefined {
    let stdin: Ctx['stdin'] | undefined;
    for (const r of raw) {
      const op = this.op.redir.get(r.Op);
      const fd = r.N ? Number(r.N.Value) : 0;
      if (fd !== 0) continue;
      if (op === '<<<') {
        const w = this.word(r.Word);
        stdin = { from: 'heredoc', text: w.value === null ? null : `${w.value}\n` };
      } else if (op === '<<' || op === '<<-') {
        stdin = { from: 'heredoc', text: heredocText(r.Hdoc) };
      } else if (op === '<' || op === '<>') stdin = { from: 'file', text: null };
    }
    return stdin;
  }

  /** The text a pipeline stage writes when it is one `echo`/`printf` of constant words (else null). */
  private echoText(x: ShStmt): string | null {
    const c = x.Cmd;
    if (!c || c.type !== 'CallExpr' || (x.Redirs ?? []).length) return null;
    const words = ((c as ShCallExpr).Args ?? []).map((w) => this.word(w));
    if (words.some((w) => w.value === null)) return null;
    const [name, ...rest] = words.map((w) => w.value!);
    if (name === 'echo') {
      const args = rest[0] === '-n' || rest[0] === '-e' || rest[0] === '-E' ? rest.slice(1) : rest;
      return `${args.join(' ')}\n`;
    }
    if (name === 'printf' && rest.length === 1 && !rest[0]!.includes('%')) return rest[0]!.replace(/\\n/g, '\n');
    return null;
  }

  private path(a: ShellArg): string {
    return resolvePathPattern(a.pattern, this.cwd, 'relative');
  }

  private assignCheck(a: ShAssign, ctx: Ctx): void {
    const name = a.Name?.Value;
    if (!name || !a.Value) return;
    const v = this.word(a.Value);
    if (name === 'PROMPT_COMMAND') {
      if (v.value === null) this.addDynamic('PROMPT_COMMAND is set from an expansion');
      else this.source(v.value, ctx, 'PROMPT_COMMAND');
    } else if (/^PS[0-4]$/.test(name) && (v.value === null || /\$\(|`/.test(v.value))) {
      this.addDynamic(`${name} would run commands in the prompt`);
    } else if (name === 'BASH_ENV' || name === 'ENV') {
      this.addDynamic(`${name} makes the shell source a file`);
    } else if (v.value !== null && /\$\(|`/.test(v.value) && quotedLiteral(a.Value)) {
      // bash evaluates a variable's text again in arithmetic (`$((x))`, `[[ x -eq 1 ]]`, a[x]): text
      // holding a command substitution would run it
      this.addDynamic(`variable ${name} holds command substitution text`);
    }
  }

  private decl(d: ShDeclClause, ctx: Ctx, redirs: ShellRedirect[]): void {
    const args: ShellArg[] = [];
    for (const a of d.Args ?? []) {
      if (a.Value) this.substitutions(a.Value, ctx);
      this.assignCheck(a, ctx);
      if (a.Naked && a.Value) args.push(this.word(a.Value));
      else if (a.Name) args.push({ value: a.Name.Value, pattern: escapeGlob(a.Name.Value) });
    }
    this.record(d.Variant.Value, d.Variant.Value, args, ctx, redirs, false);
  }

  private call(c: ShCallExpr, ctx: Ctx, redirs: ShellRedirect[]): void {
    for (const a of c.Assigns ?? []) {
      if (a.Value) this.substitutions(a.Value, ctx);
      if (a.Array) this.children(a.Array, ctx);
      this.assignCheck(a, ctx);
    }
    if (!c.Args || c.Args.length === 0) return;
    const pipedFrom = [...ctx.pipedFrom];
    const words: ShellArg[] = [];
    for (const w of c.Args) {
      const s = this.substitutions(w, ctx);
      pipedFrom.push(...s.procIn);
      words.push(this.word(w));
    }
    if (this.opts.interactive) this.historyCheck(c);
    this.argv(words, { ...ctx, pipedFrom }, redirs, false);
  }

  private historyCheck(c: ShCallExpr): void {
    for (const w of c.Args) {
      for (const p of w.Parts ?? []) {
        const t = this.type(p);
        const text = t === 'Lit' ? (p as ShLit).Value : t === 'DblQuoted' ? litText(p as ShDblQuoted) : '';
        if (/!(?![\s=(]|$)/.test(text)) { this.addDynamic('history expansion (!) replays text the gateway has not seen'); return; }
      }
    }
    const first = c.Args[0]?.Parts?.[0];
    if (first && this.type(first) === 'Lit' && (first as ShLit).Value.startsWith('^')) {
      this.addDynamic('history substitution (^old^new) replays text the gateway has not seen');
    }
  }

  /** A command line as words: records it and follows the commands it runs. */
  argv(words: ShellArg[], ctx: Ctx, redirs: ShellRedirect[], openArgs: boolean): void {
    if (words.length === 0) return;
    const head = words[0]!;
    if (head.value === null) {
      this.addDynamic(`a command name comes from an expansion or a glob (${head.pattern === ANY_PATH ? 'a variable or substitution' : head.pattern})`);
      return;
    }
    const word = head.value;
    const name = basename(word);
    this.record(name, word, words.slice(1), ctx, redirs, openArgs);
    unwrap(this, name, words.slice(1), { ...ctx, via: ctx.via }, redirs, openArgs);
  }

  record(name: string, word: string, args: ShellArg[], ctx: Ctx, redirs: ShellRedirect[], openArgs: boolean): void {
    if (this.commands.length >= this.maxCommands) throw new TooComplex(`more than ${this.maxCommands} commands`);
    const paths: string[] = [];
    let options = true;
    for (const a of args) {
      if (a.value === '--' && options) { options = false; continue; }
      if (a.value === null) { paths.push(this.path(a)); continue; }
      if (options && a.value.startsWith('-') && a.value.length > 1) {
        const eq = a.value.indexOf('=');
        if (eq > 0 && a.value[eq + 1] === '/') paths.push(this.path(subArg(a, eq + 1)));
        continue;
      }
      const eq = a.value.indexOf('=');
      if (eq > 0 && !a.value.startsWith('/') && (a.value[eq + 1] === '/' || a.value[eq + 1] === '~')) paths.push(this.path(subArg(a, eq + 1)));
      paths.push(this.path(a));
    }
    this.commands.push({ name, word, args, paths, redirects: redirs, via: [...ctx.via], pipedFrom: [...new Set(ctx.pipedFrom)], openArgs });
    this.found.push(name);
    if (name === 'cd' || name === 'pushd' || name === 'popd' || name === 'chdir') this.changeDir(name, args);
  }

  private changeDir(name: string, args: ShellArg[]): void {
    const operands = args.filter((a) => a.value === null || !a.value.startsWith('-') || a.value === '-');
    const target = operands[0];
    if (name === 'popd' || (target && (target.value === null || target.value === '-' || hasGlob(target.pattern)))) {
      this.cwd = ANY_PATH;
      return;
    }
    if (!target || target.value === '~' || target.value!.startsWith('~/')) { this.cwd = null; return; }
    const p = resolvePathPattern(target.pattern, this.cwd, 'anywhere');
    this.cwd = p.startsWith('/') && !hasGlob(p) ? p : ANY_PATH;
  }

  /** Resolves a word without running anything. */
  word(w: ShWord | null | undefined): ShellArg {
    if (!w) return { value: '', pattern: '' };
    let value = '';
    let pattern = '';
    let known = true;
    const parts = w.Parts ?? [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      const t = this.type(p);
      if (t === 'Lit') {
        let text = (p as ShLit).Value;
        if (i === 0 && text.startsWith('~')) {
          const tilde = /^~([^/]*)/.exec(text)![1]!;
          const home = tilde === 'root' ? '/root' : tilde === '+' ? this.cwd ?? '.' : tilde === '-' ? null : undefined;
          if (home === null) { known = false; pattern += ANY_PATH; text = text.slice(1 + tilde.length); }
          else if (home !== undefined) { value += home; pattern += escapeGlob(home); text = text.slice(1 + tilde.length); }
        }
        const u = unquotedLit(text);
        value += u.value;
        pattern += u.pattern;
        if (u.glob) known = false;
      } else if (t === 'SglQuoted') {
        const q = p as ShSglQuoted;
        const v = q.Dollar ? decodeAnsiC(q.Value) : q.Value;
        value += v;
        pattern += escapeGlob(v);
      } else if (t === 'DblQuoted') {
        const inner = this.dblQuoted(p as ShDblQuoted);
        if (inner === null) { known = false; pattern += ANY_PATH; } else { value += inner; pattern += escapeGlob(inner); }
      } else {
        // $x, ${x}, $(…), `…`, $((…)), <(…), extglob: not known before it runs
        known = false;
        if (!pattern.endsWith(ANY_PATH)) pattern += ANY_PATH;
      }
    }
    return known ? { value, pattern } : { value: null, pattern };
  }

  private dblQuoted(d: ShDblQuoted): string | null {
    let out = '';
    for (const p of d.Parts ?? []) {
      if (this.type(p) !== 'Lit') return null;
      out += (p as ShLit).Value.replace(/\\([$`"\\\n])/g, (_m, c: string) => (c === '\n' ? '' : c));
    }
    return out;
  }
}

// Op of `<(` in this parser build (learnt lazily with the others)
let PROC_IN_OP = -1;
function learnProcOp(): void {
  if (PROC_IN_OP !== -1) return;
  const f = parseShell('x <(y)');
  if (!isParseFailure(f)) {
    const call = f.Stmts[0]!.Cmd as ShCallExpr;
    PROC_IN_OP = (call.Args[1]!.Parts[0] as ShProcSubst).Op;
  }
}

/** A here-doc's body when it is constant (a quoted delimiter, or no expansion in it), else null. */
function heredocText(w: ShWord | null | undefined): string | null {
  if (!w) return '';
  let out = '';
  for (const p of w.Parts ?? []) {
    if (p.type !== 'Lit') return null;
    out += (p as ShLit).Value;
  }
  return out;
}

function litText(d: ShDblQuoted): string {
  return (d.Parts ?? []).filter((p) => p.type === 'Lit').map((p) => (p as ShLit).Value).join('');
}

function quotedLiteral(w: ShWord): boolean {
  return (w.Parts ?? []).some((p) => p.type === 'SglQuoted' || p.type === 'DblQuoted');
}

/**
 * An unquoted literal: `\x` is x, `\newline` disappears; `*`, `?`, `[…]` are globs; a brace
 * expansion (`{a,b}`, `{1..9}`) may become anything among its words: `**`.
 */
function unquotedLit(text: string): { value: string; pattern: string; glob: boolean } {
  let value = '';
  let pattern = '';
  let glob = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\') {
      const n = text[i + 1];
      i++;
      if (n === undefined || n === '\n') continue;
      value += n;
      pattern += escapeGlob(n);
      continue;
    }
    if (c === '{') {
      const close = braceEnd(text, i);
      if (close > 0) {
        glob = true;
        if (!pattern.endsWith(ANY_PATH)) pattern += ANY_PATH;
        i = close;
        continue;
      }
    }
    value += c;
    pattern += c;
  }
  if (!glob) glob = hasGlob(pattern);
  return { value, pattern, glob };
}

/** The `}` closing a brace expansion that starts at `open` (with a top-level `,` or `..`), or -1. */
function braceEnd(text: string, open: number): number {
  let depth = 0;
  let expands = false;
  for (let j = open; j < text.length; j++) {
    const c = text[j];
    if (c === '\\') { j++; continue; }
    if (c === '{') depth++;
    else if (c === '}') { depth--; if (depth === 0) return expands ? j : -1; }
    else if (depth === 1 && (c === ',' || (c === '.' && text[j + 1] === '.'))) expands = true;
  }
  return -1;
}

/** $'…' escapes (bash "ANSI-C quoting"). */
export function decodeAnsiC(s: string): string {
  const simple: Record<string, string> = { a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', "'": "'", '"': '"', '?': '?' };
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\' || i + 1 >= s.length) { out += c; continue; }
    const n = s[++i]!;
    if (n in simple) { out += simple[n]; continue; }
    let m: RegExpExecArray | null;
    const rest = s.slice(i);
    if ((m = /^x([0-9a-fA-F]{1,2})/.exec(rest))) { out += String.fromCharCode(parseInt(m[1]!, 16)); i += m[0].length - 1; continue; }
    if ((m = /^u([0-9a-fA-F]{1,4})/.exec(rest)) || (m = /^U([0-9a-fA-F]{1,8})/.exec(rest))) {
      const cp = parseInt(m[1]!, 16);
      out += cp <= 0x10ffff ? String.fromCodePoint(cp) : '\ufffd';
      i += m[0].length - 1;
      continue;
    }
    if ((m = /^[0-7]{1,3}/.exec(rest))) { out += String.fromCharCode(parseInt(m[0], 8) & 0xff); i += m[0].length - 1; continue; }
    if (n === 'c' && i + 1 < s.length) { out += String.fromCharCode(s.charCodeAt(++i) & 0x1f); continue; }
    out += '\\' + n;
  }
  return out;
}

export function basename(word: string): string {
  const trimmed = word.replace(/\/+$/, '');
  const i = trimmed.lastIndexOf('/');
  return i >= 0 ? trimmed.slice(i + 1) : trimmed;
}

function subArg(a: ShellArg, from: number): ShellArg {
  return { value: a.value!.slice(from), pattern: escapeGlob(a.value!.slice(from)) };
}

// ---- commands that run other commands ----

type Unwrapper = (an: Analyzer, name: string, args: ShellArg[], ctx: Ctx, redirs: ShellRedirect[], openArgs: boolean) => void;

/**
 * Skips leading options of a wrapper. `withValue`: short options that take the next word (or the
 * rest of their cluster) as a value; `longWithValue`: long options that take one (`--user x`).
 * Returns the index of the first operand, or -1 when an option's value is unknown.
 */
function skipOptions(args: ShellArg[], withValue: string, longWithValue: string[] = [], stopAtFirst = true): number {
  let i = 0;
  for (; i < args.length; i++) {
    const v = args[i]!.value;
    if (v === null) return stopAtFirst ? i : -1;
    if (v === '--') return i + 1;
    if (!v.startsWith('-') || v === '-') return i;
    if (v.startsWith('--')) {
      const name = v.slice(2).split('=')[0]!;
      if (!v.includes('=') && longWithValue.some((l) => l === name || (name.length >= 2 && l.startsWith(name)))) i++;
      continue;
    }
    for (let k = 1; k < v.length; k++) {
      if (withValue.includes(v[k]!)) {
        if (k === v.length - 1) i++;
        break;
      }
    }
  }
  return i;
}

function inner(an: Analyzer, via: string, rest: ShellArg[], ctx: Ctx, redirs: ShellRedirect[], openArgs: boolean): void {
  an.argv(rest, { ...ctx, via: [...ctx.via, via] }, redirs, openArgs);
}

const OPEN: ShellArg = { value: null, pattern: ANY_PATH };

/** `bash [opts] -c 'script' [name args…]`, also `-xc`, `-lc`, `-o opt`. */
function shellDashC(an: Analyzer, name: string, args: ShellArg[], ctx: Ctx): boolean {
  let hasC = false;
  let i = 0;
  for (; i < args.length; i++) {
    const v = args[i]!.value;
    if (v === null) break;
    if (v === '--' || v === '-') { i++; break; }
    if (v.startsWith('--')) {
      if (v === '--rcfile' || v === '--init-file') i++;
      continue;
    }
    if (!/^[-+]/.test(v)) break;
    if (/^-[A-Za-z]*c/.test(v)) hasC = true;
    if (/^[-+][A-Za-z]*[oO]$/.test(v)) i++;
  }
  if (!hasC) {
    // no -c: the first operand is a script file (the gateway cannot read it, as for ./x.sh); with none
    // (or -s), the shell reads its commands from standard input
    const readsStdin = i >= args.length || args.slice(0, i).some((a) => /^-[A-Za-z]*s/.test(a.value ?? ''));
    if (readsStdin) shellStdin(an, name, ctx);
    return false;
  }
  const script = args[i];
  if (!script) return true;
  if (script.value === null) an.addDynamic(`${name} -c runs a script built at run time`);
  else an.source(script.value, ctx, `${name} -c`);
  return true;
}

/** A shell reading its commands from standard input: parsed when they are known, else dynamic. */
function shellStdin(an: Analyzer, name: string, ctx: Ctx): void {
  const stdin = ctx.stdin;
  if (stdin?.from === 'file') return; // `sh < file`: a script file, as `sh file`
  if (stdin && stdin.text !== null) { an.source(stdin.text, { ...ctx, stdin: undefined, via: [...ctx.via, `${name} <<`] }, `${name} reading standard input`); return; }
  if (stdin) { an.addDynamic(`${name} reads its commands from a ${stdin.from === 'pipe' ? 'pipe' : 'here-doc built at run time'}`); return; }
  // the session's own input: with a terminal the gateway decides those lines as they are typed; the
  // caller says when it does not (an exec without a pty, whose input is a stream of commands)
  if (an.opts.unseenInput && !an.opts.interactive) an.addDynamic(`${name} reads its commands from the session's input, which the gateway does not decide line by line`);
}

function scriptArg(an: Analyzer, what: string, script: ShellArg | undefined, ctx: Ctx): void {
  if (!script) return;
  if (script.value === null) an.addDynamic(`${what} runs a script built at run time`);
  else an.source(script.value, { ...ctx, via: [...ctx.via, what] }, what);
}

function joined(args: ShellArg[]): ShellArg {
  if (args.some((a) => a.value === null)) return OPEN;
  const v = args.map((a) => a.value).join(' ');
  return { value: v, pattern: escapeGlob(v) };
}

const UNWRAP: Record<string, Unwrapper> = {
  sudo: (an, name, args, ctx, redirs, open) => {
    const i = skipOptions(args, 'ugCDhprtUTc', ['user', 'group', 'close-from', 'chdir', 'host', 'prompt', 'role', 'type', 'other-user', 'command-timeout']);
    if (i < 0) return an.addDynamic('sudo options come from an expansion');
    inner(an, name, args.slice(i), ctx, redirs, open);
  },
  doas: (an, name, args, ctx, redirs, open) => {
    const i = skipOptions(args, 'uC');
    if (i >= 0) inner(an, name, args.slice(i), ctx, redirs, open);
  },
  env: (an, name, args, ctx, redirs, open) => {
    let i = 0;
    for (; i < args.length; i++) {
      const v = args[i]!.value;
      if (v === null) return an.addDynamic('env arguments come from an expansion');
      if (v === '--') { i++; break; }
      if (v === '-S' || v.startsWith('--split-string')) {
        const s = v.includes('=') ? { value: v.slice(v.indexOf('=') + 1), pattern: '' } : args[++i];
        scriptArg(an, 'env -S', s ? joined([s, ...args.slice(i + 1)]) : undefined, ctx);
        return;
      }
      if (v.startsWith('-S')) { scriptArg(an, 'env -S', joined([{ value: v.slice(2), pattern: '' }, ...args.slice(i + 1)]), ctx); return; }
      if (v === '-u' || v === '-C' || v === '--unset' || v === '--chdir') { i++; continue; }
      if (v.startsWith('-')) continue;
      if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(v)) continue;
      break;
    }
    inner(an, name, args.slice(i), ctx, redirs, open);
  },
  xargs: (an, name, args, ctx, redirs) => {
    const i = skipOptions(args, 'IiLlnPsdEaeS', ['replace', 'max-lines', 'max-args', 'max-procs', 'max-chars', 'delimiter', 'eof', 'arg-file', 'process-slot-var']);
    if (i < 0) return an.addDynamic('xargs options come from an expansion');
    const rest = args.slice(i);
    // with no command xargs runs echo; the input adds arguments we cannot see
    inner(an, name, rest.length ? [...rest, OPEN] : [{ value: 'echo', pattern: 'echo' }, OPEN], ctx, redirs, true);
  },
  parallel: (an, name, args, ctx) => {
    const i = skipOptions(args, 'jSIaE', ['jobs', 'sshlogin', 'arg-file']);
    if (i < 0) return an.addDynamic('parallel options come from an expansion');
    const rest = args.slice(i);
    const sep = rest.findIndex((a) => a.value === ':::' || a.value === '::::');
    const cmd = sep >= 0 ? rest.slice(0, sep) : rest;
    if (cmd.length) scriptArg(an, 'parallel', joined([...cmd, OPEN]), ctx);
  },
  nohup: (an, name, args, ctx, redirs, open) => inner(an, name, args, ctx, redirs, open),
  setsid: (an, name, args, ctx, redirs, open) => { const i = skipOptions(args, ''); if (i >= 0) inner(an, name, args.slice(i), ctx, redirs, open); },
  stdbuf: (an, name, args, ctx, redirs, open) => { const i = skipOptions(args, 'ioe', ['input', 'output', 'error']); if (i >= 0) inner(an, name, args.slice(i), ctx, redirs, open); },
  timeout: (an, name, args, ctx, redirs, open) => {
    const i = skipOptions(args, 'sk', ['signal', 'kill-after']);
    if (i < 0) return an.addDynamic('timeout options come from an expansion');
    inner(an, name, args.slice(i + 1), ctx, redirs, open); // skip the duration
  },
  nice: (an, name, args, ctx, redirs, open) => {
    let i = 0;
    while (i < args.length && args[i]!.value !== null && /^-(n|-adjustment)?$|^-\d+$|^-n\d+$|^--adjustment=/.test(args[i]!.value!)) i += args[i]!.value === '-n' || args[i]!.value === '--adjustment' ? 2 : 1;
    if (args[i]?.value === '--') i++;
    inner(an, name, args.slice(i), ctx, redirs, open);
  },
  ionice: (an, name, args, ctx, redirs, open) => { const i = skipOptions(args, 'cnp', ['class', 'classdata', 'pid']); if (i >= 0) inner(an, name, args.slice(i), ctx, redirs, open); },
  chrt: (an, name, args, ctx, redirs, open) => { const i = skipOptions(args, ''); if (i >= 0) inner(an, name, args.slice(i + 1), ctx, redirs, open); },
  taskset: (an, name, args, ctx, redirs, open) => { const i = skipOptions(args, ''); if (i >= 0) inner(an, name, args.slice(i + 1), ctx, redirs, open); },
  chroot: (an, name, args, ctx, redirs, open) => {
    const i = skipOptions(args, '', ['userspec', 'groups']);
    if (i < 0) return;
    const rest = args.slice(i + 1);
    inner(an, name, rest.length ? rest : [{ value: 'sh', pattern: 'sh' }], ctx, redirs, open);
  },
  flock: (an, name, args, ctx, redirs, open) => {
    const i = skipOptions(args, 'wEc', ['timeout', 'conflict-exit-code', 'command']);
    const c = args.findIndex((a) => a.value === '-c' || a.value === '--command');
    if (c >= 0) return scriptArg(an, 'flock -c', args[c + 1], ctx);
    if (i >= 0) inner(an, name, args.slice(i + 1), ctx, redirs, open);
  },
  exec: (an, name, args, ctx, redirs, open) => { const i = skipOptions(args, 'a'); if (i >= 0) inner(an, name, args.slice(i), ctx, redirs, open); },
  command: (an, name, args, ctx, redirs, open) => { const i = skipOptions(args, ''); if (i >= 0) inner(an, name, args.slice(i), ctx, redirs, open); },
  builtin: (an, name, args, ctx, redirs, open) => inner(an, name, args, ctx, redirs, open),
  time: (an, name, args, ctx, redirs, open) => { const i = skipOptions(args, 'fo', ['format', 'output']); if (i >= 0) inner(an, name, args.slice(i), ctx, redirs, open); },
  strace: (an, name, args, ctx, redirs, open) => { const i = skipOptions(args, 'eoOpPsSuEXbIaU'); if (i >= 0) inner(an, name, args.slice(i), ctx, redirs, open); },
  ltrace: (an, name, args, ctx, redirs, open) => { const i = skipOptions(args, 'eoOpPsSuEXbIaUln'); if (i >= 0) inner(an, name, args.slice(i), ctx, redirs, open); },
  busybox: (an, name, args, ctx, redirs, open) => inner(an, name, args, ctx, redirs, open),
  toybox: (an, name, args, ctx, redirs, open) => inner(an, name, args, ctx, redirs, open),
  watch: (an, _name, args, ctx) => {
    const i = skipOptions(args, 'nqd', ['interval', 'differences']);
    if (i >= 0 && args.length > i) scriptArg(an, 'watch', joined(args.slice(i)), ctx);
  },
  script: (an, _name, args, ctx) => {
    const c = args.findIndex((a) => a.value === '-c' || a.value === '--command');
    if (c >= 0) scriptArg(an, 'script -c', args[c + 1], ctx);
    const eq = args.find((a) => a.value?.startsWith('--command='));
    if (eq) scriptArg(an, 'script -c', { value: eq.value!.slice(10), pattern: '' }, ctx);
  },
  su: (an, name, args, ctx) => suCommand(an, name, args, ctx),
  runuser: (an, name, args, ctx, redirs, open) => {
    if (suCommand(an, name, args, ctx)) return;
    const dd = args.findIndex((a) => a.value === '--');
    if (dd >= 0) inner(an, name, args.slice(dd + 1), ctx, redirs, open);
  },
  eval: (an, _name, args, ctx) => {
    if (args.length === 0) return;
    const j = joined(args);
    if (j.value === null) an.addDynamic('eval of text built at run time');
    else an.source(j.value, { ...ctx, via: [...ctx.via, 'eval'] }, 'eval');
  },
  source: (an) => an.addDynamic('source runs a file the gateway cannot see'),
  '.': (an, _n, args) => { if (args.length) an.addDynamic('. (source) runs a file the gateway cannot see'); },
  fc: (an, _n, args) => { if (!args.some((a) => a.value === '-l')) an.addDynamic('fc re-runs commands from history'); },
  trap: (an, _n, args, ctx) => {
    const first = args[0];
    if (!first || first.value === '-p' || first.value === '-l') return;
    if (args.length >= 2) scriptArg(an, 'trap', first, ctx);
  },
  alias: (an, _n, args, ctx) => {
    for (const a of args) {
      if (a.value === null) { an.addDynamic('alias defined from an expansion'); continue; }
      const eq = a.value.indexOf('=');
      if (eq > 0) scriptArg(an, 'alias', { value: a.value.slice(eq + 1), pattern: '' }, ctx);
    }
  },
  find: (an, _n, args, ctx, redirs) => {
    // the starting points come before the expression; `{}` is each file found under them (or them)
    const firstExpr = args.findIndex((a) => a.value === null ? false : /^[-(!]/.test(a.value));
    const starts = (firstExpr < 0 ? args : args.slice(0, firstExpr)).map((a) => a.pattern.replace(/\/+$/, ''));
    const found = (starts.length ? starts : ['.']).map((s): ShellArg => ({ value: null, pattern: s === ANY_PATH ? ANY_PATH : `${s}/**` }));
    for (let i = 0; i < args.length; i++) {
      const v = args[i]!.value;
      if (v === '-exec' || v === '-execdir' || v === '-ok' || v === '-okdir') {
        let end = i + 1;
        while (end < args.length && args[end]!.value !== ';' && args[end]!.value !== '+') end++;
        const cmd = args.slice(i + 1, end).flatMap((a) => (a.value !== null && a.value.includes('{}') ? found : [a]));
        if (cmd.length) an.argv(cmd, { ...ctx, via: [...ctx.via, `find ${v}`] }, redirs, true);
        i = end;
      }
    }
  },
};

function suCommand(an: Analyzer, name: string, args: ShellArg[], ctx: Ctx): boolean {
  for (let i = 0; i < args.length; i++) {
    const v = args[i]!.value;
    if (v === '-c' || v === '--command' || v === '-C' || v === '--session-command') { scriptArg(an, `${name} -c`, args[i + 1], ctx); return true; }
    if (v?.startsWith('--command=') || v?.startsWith('--session-command=')) {
      scriptArg(an, `${name} -c`, { value: v.slice(v.indexOf('=') + 1), pattern: '' }, ctx);
      return true;
    }
    if (v !== null && /^-[a-zA-Z]*c$/.test(v) && !v.startsWith('--')) { scriptArg(an, `${name} -c`, args[i + 1], ctx); return true; }
  }
  return false;
}

function unwrap(an: Analyzer, name: string, args: ShellArg[], ctx: Ctx, redirs: ShellRedirect[], openArgs: boolean): void {
  if (SHELLS.has(name)) {
    shellDashC(an, name, args, ctx);
    return;
  }
  const u = Object.prototype.hasOwnProperty.call(UNWRAP, name) ? UNWRAP[name] : undefined;
  if (u) u(an, name, args, ctx, redirs, openArgs);
}

/** Whether function `fn` calls itself, directly or through other functions of the text. */
function reaches(functions: Map<string, Set<string>>, fn: string): boolean {
  const seen = new Set<string>();
  const todo = [...(functions.get(fn) ?? [])];
  while (todo.length) {
    const f = todo.pop()!;
    if (f === fn) return true;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const g of functions.get(f) ?? []) todo.push(g);
  }
  return false;
}

/** Analyses a shell text (an exec command, a shell line). Never throws. */
export function analyzeShell(text: string, opts: ShellAnalysisOptions = {}): ShellAnalysis {
  const empty = (failure: ShellParseFailure): ShellAnalysis => ({
    commands: [], redirects: [], dynamic: [], recursiveFunctions: [], failure, cwd: opts.cwd ?? null,
  });
  if (typeof text !== 'string') return empty({ kind: 'syntax', message: 'command is not text', incomplete: false });
  const file = parseShell(text, opts.maxBytes ?? DEFAULT_MAX_COMMAND_BYTES, opts.maxDepth ?? DEFAULT_MAX_SHELL_DEPTH);
  if (isParseFailure(file)) return empty(file);
  learnProcOp();
  const an = new Analyzer(opts);
  try {
    an.file(file);
  } catch (err) {
    if (err instanceof TooComplex) return empty({ kind: 'too-complex', depth: -1, limit: opts.maxNesting ?? DEFAULT_MAX_NESTING, message: err.message });
    if (err instanceof RangeError) return empty({ kind: 'too-complex', depth: -1, limit: opts.maxDepth ?? DEFAULT_MAX_SHELL_DEPTH });
    return empty({ kind: 'fault', message: (err as Error).message });
  }
  const recursiveFunctions = [...an.functions.keys()].filter((fn) => reaches(an.functions, fn));
  return { commands: an.commands, redirects: an.redirects, dynamic: an.dynamic, recursiveFunctions, failure: null, cwd: an.cwd };
}
