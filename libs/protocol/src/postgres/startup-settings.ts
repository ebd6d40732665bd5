import { requestedLexingProblem } from './lexing-settings.js';

/**
 * The settings a client asks for in its startup packet: every parameter but the few the protocol
 * itself uses, and each `-c name=value` / `--name=value` inside `options` (what libpq's PGOPTIONS
 * and node-postgres's `options` send). Postgres applies both the same way, as the session's
 * settings; so does the gateway, which forwards them as plain startup parameters.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html (StartupMessage)
 */

/** Settings refused when a policy names none: they would change who the session acts as. */
export const DEFAULT_REFUSED_SETTINGS: readonly string[] = ['role', 'session_authorization'];

/** Startup parameters that are not settings. */
const NOT_SETTINGS = new Set(['user', 'database', 'options', 'replication']);

export interface StartupSetting {
  /** lower case (setting names compare case-insensitively); `-` in a `--name` is `_`, as Postgres reads it */
  name: string;
  value: string;
}

export type StartupSettingsResult =
  | { kind: 'settings'; settings: StartupSetting[] }
  | { kind: 'refused'; code: string; message: string };

/**
 * Splits `options` as Postgres does (pg_split_opts): arguments separated by unescaped whitespace,
 * a backslash taking the next character literally.
 */
export function splitOptions(options: string): string[] {
  const args: string[] = [];
  let cur = '';
  let inArg = false;
  for (let i = 0; i < options.length; i++) {
    const c = options[i];
    if (c === '\\' && i + 1 < options.length) {
      cur += options[++i];
      inArg = true;
    } else if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
      if (inArg) args.push(cur);
      cur = '';
      inArg = false;
    } else {
      cur += c;
      inArg = true;
    }
  }
  if (inArg) args.push(cur);
  return args;
}

/**
 * The settings in `options`: `-c name=value`, `-cname=value`, `--name=value`. Any other switch
 * (the server's command-line options such as `-B`, `-d`, `-F`) is refused rather than dropped.
 */
export function parseOptions(options: string): StartupSetting[] | { error: string } {
  const args = splitOptions(options);
  const out: StartupSetting[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    let pair: string | undefined;
    if (a === '-c') pair = args[++i];
    else if (a.startsWith('-c')) pair = a.slice(2);
    else if (a.startsWith('--')) pair = a.slice(2);
    else return { error: `options may carry only -c name=value and --name=value; "${a}" is not accepted through the gateway` };
    const eq = pair === undefined ? -1 : pair.indexOf('=');
    if (pair === undefined || eq <= 0) return { error: `option "${a}${pair !== undefined && a === '-c' ? ` ${pair}` : ''}" has no name=value` };
    const name = pair.slice(0, eq).toLowerCase();
    out.push({ name: a.startsWith('--') ? name.replace(/-/g, '_') : name, value: pair.slice(eq + 1) });
  }
  return out;
}

/**
 * Every setting of a startup packet, `options` first (Postgres applies the packet's own
 * parameters after it, so they win), each checked: a name in `refused` (lower case) or a value the
 * gateway's parser could not follow (lexing-settings.ts) refuses the session, never drops the setting.
 * Protocol extensions (`_pq_.*`) are not settings and do not pass.
 */
export function startupSettings(params: Record<string, string>, refused: readonly string[]): StartupSettingsResult {
  const settings: StartupSetting[] = [];
  if (params.options !== undefined) {
    const parsed = parseOptions(params.options);
    if ('error' in parsed) return { kind: 'refused', code: '22023', message: parsed.error };
    settings.push(...parsed);
  }
  for (const [k, value] of Object.entries(params)) {
    if (NOT_SETTINGS.has(k) || k.startsWith('_pq_.')) continue;
    settings.push({ name: k.toLowerCase(), value });
  }
  const refusedSet = new Set(refused.map((r) => r.toLowerCase()));
  for (const s of settings) {
    if (refusedSet.has(s.name)) {
      return { kind: 'refused', code: '42501', message: `setting ${s.name} is refused by the connection's policy (refusedSettings); it cannot be set through the gateway` };
    }
    const problem = requestedLexingProblem(s.name, s.value);
    if (problem) return { kind: 'refused', code: '22023', message: problem };
  }
  return { kind: 'settings', settings };
}
