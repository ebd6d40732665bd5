import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { formatIssues, gatewayCredentialSchema } from '@portcullis/protocol';
import { ApiRequestError } from '../api-client.js';
import { allowOnly, boolFlag, stringFlag, UsageError, type ParsedArgs } from '../args.js';
import { authedClient, config, EXIT, println, type CliContext } from '../context.js';

/**
 * `portcullis kubeconfig <connection>`: the api's kubeconfig for the gateway's Kubernetes listener,
 * printed or written (--output, mode 0600). By default it runs `portcullis kube-credential` for
 * tokens; --static embeds one short-lived credential instead (agents without the CLI).
 */
export async function kubeconfig(ctx: CliContext, args: ParsedArgs): Promise<number> {
  allowOnly(args, ['static', 'namespace', 'output', 'fail-fast']);
  const name = args.positionals[0];
  if (!name || args.positionals.length > 1) throw new UsageError('usage: portcullis kubeconfig <connection> [--static] [--namespace <ns>] [--output <file>] [--fail-fast]');
  const q = new URLSearchParams();
  if (boolFlag(args, 'static')) q.set('token', 'static');
  const ns = stringFlag(args, 'namespace');
  if (ns) q.set('namespace', ns);
  if (boolFlag(args, 'fail-fast')) q.set('mode', 'fail-fast');
  const api = authedClient(ctx);
  const res = await api.raw('GET', `/v1/connections/${encodeURIComponent(name)}/kubeconfig${q.size ? `?${q}` : ''}`, { accept: 'application/yaml' });
  const out = stringFlag(args, 'output');
  if (!out) {
    ctx.stdout.write(res.text);
    return EXIT.ok;
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, res.text, { mode: 0o600 });
  chmodSync(out, 0o600);
  println(ctx.stderr, `wrote ${out}: kubectl --kubeconfig ${out} get ns`);
  return EXIT.ok;
}

/** Renew a cached credential this long before it expires (kubectl calls the plugin again when it does). */
const RENEW_BEFORE_MS = 60_000;
const EXEC_API_VERSIONS = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'];
/** How many recent callers (kubectl processes) a cached credential remembers it was handed to. */
const MAX_CALLERS = 32;

interface CachedCredential {
  token: string;
  expiresAt: string;
  /** the processes (see pluginCaller) this credential was handed to */
  callers: string[];
}

/**
 * `portcullis kube-credential <connection>`: a client-go exec credential plugin. Prints an
 * ExecCredential whose status.token is a gateway credential for the connection, cached in
 * ~/.portcullis/kube/ (mode 0600, per api and login) until a minute before it expires.
 *
 * A cached credential can die before its expiry (revoked by id, with the api token it was minted with,
 * or with the access grant it rests on). client-go keeps the plugin's answer in memory for the life of
 * the kubectl process and runs the plugin again only when it expires or after a 401 response (it does
 * not retry that request, and tells a v1 plugin nothing about why it runs). So the cache remembers which
 * processes it handed its credential to: the same process asking again before expiry means the
 * credential was refused, and a new one is minted (the next kubectl call, and the rest of this one, use
 * it). If none can be minted (the grant revoked, access removed) the dead credential is dropped and the
 * api's reason printed. No call to the api otherwise.
 */
export async function kubeCredential(ctx: CliContext, args: ParsedArgs): Promise<number> {
  allowOnly(args, ['fail-fast']);
  const name = args.positionals[0];
  if (!name || args.positionals.length > 1) throw new UsageError('usage: portcullis kube-credential <connection> [--fail-fast]');
  const c = config(ctx);
  // kubectl says which apiVersion it wants in KUBERNETES_EXEC_INFO; answer in it when we know it
  let apiVersion = EXEC_API_VERSIONS[0]!;
  try {
    const info = JSON.parse(ctx.env.KUBERNETES_EXEC_INFO ?? '{}') as { apiVersion?: unknown };
    if (typeof info.apiVersion === 'string' && EXEC_API_VERSIONS.includes(info.apiVersion)) apiVersion = info.apiVersion;
  } catch {
    // not JSON: keep v1
  }
  const failFast = boolFlag(args, 'fail-fast');
  const scope = createHash('sha256').update(`${c.api}\n${c.token ?? ''}\n${failFast ? 'fail-fast' : ''}`).digest('hex').slice(0, 16);
  const file = join(ctx.env.HOME?.trim() || homedir(), '.portcullis', 'kube', scope, `${name.replace(/[^A-Za-z0-9_-]/g, '_')}.json`);
  const caller = pluginCaller();
  let cred = readCache(file);
  const refused = cred !== null && cred.callers.includes(caller);
  if (!cred || refused || Date.parse(cred.expiresAt) - Date.now() < RENEW_BEFORE_MS) {
    const api = authedClient(ctx);
    const path = `/v1/connections/${encodeURIComponent(name)}/credentials`;
    let body: unknown;
    try {
      body = await api.json<unknown>('POST', path, failFast ? { mode: 'fail-fast' } : {});
    } catch (err) {
      // the cached credential is dead or over: never hand it out again
      rmSync(file, { force: true });
      if (refused && err instanceof ApiRequestError) {
        throw new ApiRequestError(`the gateway refused the cached credential for connection "${name}" and the api gives no new one: ${err.message}`, err.status, err.code, { cause: err });
      }
      throw err;
    }
    const parsed = gatewayCredentialSchema.safeParse(body);
    if (!parsed.success) throw new ApiRequestError(`the api sent an unexpected credential for POST ${path}: ${formatIssues(parsed.error).join('; ')}`, undefined, 'bad_response');
    cred = { token: parsed.data.token, expiresAt: parsed.data.expiresAt, callers: [] };
  }
  cred.callers = [...cred.callers.filter((x) => x !== caller), caller].slice(-MAX_CALLERS);
  writeCache(file, cred);
  const expirationTimestamp = new Date(cred.expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z');
  println(ctx.stdout, JSON.stringify({ apiVersion, kind: 'ExecCredential', spec: { interactive: false }, status: { token: cred.token, expirationTimestamp } }));
  return EXIT.ok;
}

/**
 * Who runs this plugin: the nearest ancestor process that is not a wrapper forwarding `kube-credential`
 * (a shell script on PATH, `pnpm portcullis`), as `pid:start time` from /proc so a reused pid is another
 * caller. Without /proc (macOS, Windows) the parent's pid alone.
 */
export function pluginCaller(): string {
  let pid = process.ppid;
  for (let hops = 0; hops < 8 && pid > 1; hops++) {
    let stat: string;
    let cmdline: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return `pid:${pid}`;
    }
    // fields after "(comm)": state ppid … starttime is field 22, the 20th after comm
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (!cmdline.split('\0').some((arg) => arg.includes('kube-credential'))) return `${pid}:${fields[19]}`;
    pid = Number(fields[1]);
  }
  return `pid:${process.ppid}`;
}

function readCache(file: string): CachedCredential | null {
  if (!existsSync(file)) return null;
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as Partial<CachedCredential>;
    if (typeof v.token !== 'string' || typeof v.expiresAt !== 'string' || Number.isNaN(Date.parse(v.expiresAt))) return null;
    return { token: v.token, expiresAt: v.expiresAt, callers: Array.isArray(v.callers) ? v.callers.filter((x): x is string => typeof x === 'string') : [] };
  } catch {
    return null;
  }
}

/** Written whole (temporary file, then rename): kubectl processes running at once never read half a file. */
function writeCache(file: string, cred: CachedCredential): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(cred), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}
