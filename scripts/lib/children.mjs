// Runs the apps as child processes: every line of their output prefixed with the app's name in its own
// colour; stop() sends SIGTERM to all, then SIGKILL to whatever is left after a grace period.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const COLOURS = { api: 36, gateway: 35, approvals: 33, recorder: 32, idp: 34, start: 1 };
const LEVELS = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const SKIP_KEYS = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'v']);

export function useColour(stream = process.stdout) {
  if (process.env.NO_COLOR) return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true;
  return Boolean(stream.isTTY);
}

export function paint(colour, text, enabled) {
  return enabled ? `\x1b[${colour}m${text}\x1b[0m` : text;
}

// Start-up chatter nobody reads in a dev terminal: Nest's module/route listing, oidc-provider's
// warnings that it runs in dev mode (it does, on purpose). PORTCULLIS_LOG_FORMAT=json keeps everything.
const NOISY_CONTEXTS = new Set(['InstanceLoader', 'RoutesResolver', 'RouterExplorer']);
const NOISY_TEXT = [/^oidc-provider WARNING: (Unsupported runtime|a quick start development-only in-memory adapter)/];

/**
 * Shortens one pino JSON line to `LEVEL msg key=value…` (an http request to `METHOD url status ms`);
 * anything else passes through. Returns null for a line not worth showing.
 */
export function formatLogLine(line) {
  if (NOISY_TEXT.some((re) => re.test(line))) return null;
  if (!line.startsWith('{')) return line;
  let o;
  try {
    o = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof o !== 'object' || o === null || !('msg' in o || 'level' in o)) return line;
  const level = typeof o.level === 'number' ? (LEVELS[o.level] ?? String(o.level)) : String(o.level ?? 'INFO').toUpperCase();
  if (level === 'INFO' && NOISY_CONTEXTS.has(o.context)) return null;
  if (o.req && typeof o.req === 'object' && o.res && typeof o.res === 'object') {
    const ms = typeof o.responseTime === 'number' ? ` ${o.responseTime}ms` : '';
    const url = String(o.req.url ?? '').replace(/([?&](?:access_token|code|token|state)=)[^&]+/g, '$1…');
    return `${level.padEnd(5)} ${o.req.method ?? ''} ${url} ${o.res.statusCode ?? ''}${ms}`;
  }
  const extras = [];
  for (const [k, v] of Object.entries(o)) {
    if (SKIP_KEYS.has(k) || v === undefined) continue;
    if (k === 'err' && v && typeof v === 'object') {
      extras.push(`err=${JSON.stringify(v.message ?? v)}`);
      if (typeof v.stack === 'string' && (o.level ?? 30) >= 50) extras.push(`\n${v.stack}`);
      continue;
    }
    if (k === 'req' || k === 'res') continue; // pino-http request dumps: the msg says enough
    extras.push(`${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  return `${level.padEnd(5)} ${o.msg ?? ''}${extras.length ? ` ${extras.join(' ')}` : ''}`;
}

export class Supervisor {
  /**
   * @param {{colour?: boolean, format?: 'pretty'|'json', out?: NodeJS.WritableStream, onExit?: (name: string, code: number|null, signal: string|null) => void}} opts
   */
  constructor(opts = {}) {
    this.colour = opts.colour ?? useColour();
    this.format = opts.format ?? 'pretty';
    this.out = opts.out ?? process.stdout;
    this.onExit = opts.onExit ?? (() => undefined);
    /** @type {Map<string, import('node:child_process').ChildProcess>} */
    this.children = new Map();
    this.width = 9;
    this.stopping = false;
  }

  prefix(name) {
    return paint(COLOURS[name] ?? 37, `${name.padEnd(this.width)}│`, this.colour);
  }

  log(name, line) {
    this.out.write(`${this.prefix(name)} ${line}\n`);
  }

  /** Starts `node <script>` (or any command) as `name`. */
  start(name, command, args, { env, cwd }) {
    const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.set(name, child);
    for (const stream of [child.stdout, child.stderr]) {
      const rl = createInterface({ input: stream, crlfDelay: Infinity });
      rl.on('line', (line) => {
        const shown = this.format === 'json' ? line : formatLogLine(line);
        if (shown !== null) this.log(name, shown);
      });
    }
    child.once('error', (err) => this.log(name, `could not start: ${err.message}`));
    child.once('exit', (code, signal) => {
      this.children.delete(name);
      if (!this.stopping) this.onExit(name, code, signal);
    });
    return child;
  }

  running(name) {
    return this.children.has(name);
  }

  /** SIGTERM every child, wait up to `graceMs`, then SIGKILL the rest. Resolves when all are gone. */
  async stop(graceMs = 10_000) {
    this.stopping = true;
    const waits = [...this.children.entries()].map(([name, child]) => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => {
        this.log(name, `did not stop within ${graceMs / 1000}s, killing it`);
        child.kill('SIGKILL');
      }, graceMs);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    }));
    await Promise.all(waits);
  }

  /** SIGKILL everything now (second Ctrl-C). */
  killAll() {
    for (const child of this.children.values()) child.kill('SIGKILL');
  }
}
