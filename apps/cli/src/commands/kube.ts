import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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

interface CachedCredential {
  token: string;
  expiresAt: string;
}

/**
 * `portcullis kube-credential <connection>`: a client-go exec credential plugin. Prints an
 * ExecCredential whose status.token is a gateway credential for the connection, cached in
 * ~/.portcullis/kube/ (mode 0600, per api and login) until a minute before it expires.
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
  let cred = readCache(file);
  if (!cred || Date.parse(cred.expiresAt) - Date.now() < RENEW_BEFORE_MS) {
    const api = authedClient(ctx);
    const path = `/v1/connections/${encodeURIComponent(name)}/credentials`;
    const parsed = gatewayCredentialSchema.safeParse(await api.json<unknown>('POST', path, failFast ? { mode: 'fail-fast' } : {}));
    if (!parsed.success) throw new ApiRequestError(`the api sent an unexpected credential for POST ${path}: ${formatIssues(parsed.error).join('; ')}`, undefined, 'bad_response');
    cred = { token: parsed.data.token, expiresAt: parsed.data.expiresAt };
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, JSON.stringify(cred), { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  const expirationTimestamp = new Date(cred.expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z');
  println(ctx.stdout, JSON.stringify({ apiVersion, kind: 'ExecCredential', spec: { interactive: false }, status: { token: cred.token, expirationTimestamp } }));
  return EXIT.ok;
}

function readCache(file: string): CachedCredential | null {
  if (!existsSync(file)) return null;
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as Partial<CachedCredential>;
    return typeof v.token === 'string' && typeof v.expiresAt === 'string' && !Number.isNaN(Date.parse(v.expiresAt)) ? { token: v.token, expiresAt: v.expiresAt } : null;
  } catch {
    return null;
  }
}
