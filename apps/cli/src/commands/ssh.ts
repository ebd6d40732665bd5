import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { generateSshEd25519 } from '@portcullis/protocol';
import { ApiRequestError } from '../api-client.js';
import { allowOnly, boolFlag, stringFlag, UsageError, type ParsedArgs } from '../args.js';
import { authedClient, EXIT, println, type CliContext } from '../context.js';

interface SshCertificateReply {
  certificate: string;
  expiresAt: string;
  knownHosts: string;
  user: string;
  host: string;
  port: number;
}

const home = (ctx: CliContext): string => ctx.env.HOME?.trim() || homedir();

/** ssh(1) options that take a value (so `-p 22` is one option, not an option and a command). */
const SSH_VALUE_OPTIONS = new Set('BbcDEeFIiJLlmOoPpQRSWw'.split(''));

/** Splits what follows the connection into ssh options (before the destination) and the remote command (after it). */
export function splitSshArgs(args: readonly string[]): { options: string[]; command: string[] } {
  const options: string[] = [];
  let i = 0;
  while (i < args.length && args[i]!.startsWith('-') && args[i] !== '-') {
    const a = args[i]!;
    options.push(a);
    i++;
    // `-p22` carries its value; `-p 22` takes the next one; `-tt`, `-vvv` are flags
    const letters = a.slice(1);
    const last = letters.at(-1)!;
    const valueInline = letters.length > 1 && [...letters].some((ch, k) => SSH_VALUE_OPTIONS.has(ch) && k < letters.length - 1);
    if (!valueInline && SSH_VALUE_OPTIONS.has(last) && i < args.length) options.push(args[i++]!);
  }
  return { options, command: args.slice(i) };
}

/** The key to certify: --key, else the first ~/.ssh/id_{ed25519,ecdsa,rsa} with its .pub, else one we make in ~/.portcullis/ssh. */
function pickKey(ctx: CliContext, explicit: string | undefined): { key: string; pub: string; made: boolean } {
  if (explicit) {
    if (!existsSync(`${explicit}.pub`)) throw new UsageError(`--key ${explicit}: no public key ${explicit}.pub beside it (ssh-keygen -y -f ${explicit} > ${explicit}.pub)`);
    return { key: explicit, pub: `${explicit}.pub`, made: false };
  }
  for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
    const key = join(home(ctx), '.ssh', name);
    if (existsSync(key) && existsSync(`${key}.pub`)) return { key, pub: `${key}.pub`, made: false };
  }
  const dir = join(home(ctx), '.portcullis', 'ssh');
  const key = join(dir, 'id_ed25519');
  if (existsSync(key) && existsSync(`${key}.pub`)) return { key, pub: `${key}.pub`, made: false };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pair = generateSshEd25519('portcullis');
  writeFileSync(key, pair.privateKey, { mode: 0o600 });
  chmodSync(key, 0o600);
  writeFileSync(`${key}.pub`, `${pair.publicKey}\n`, { mode: 0o644 });
  return { key, pub: `${key}.pub`, made: true };
}

/**
 * `portcullis ssh <connection> [ssh args…]`: has the api sign a short-lived OpenSSH user certificate
 * for the caller's key, writes it and the gateway's known_hosts into ~/.portcullis/ssh/<connection>/,
 * then runs OpenSSH with them (the certificate's key id is the gateway credential).
 */
export async function ssh(ctx: CliContext, args: ParsedArgs): Promise<number> {
  allowOnly(args, ['key', 'print', 'fail-fast']);
  const [name, ...sshArgs] = args.positionals;
  if (!name) throw new UsageError('usage: portcullis ssh <connection> [--key <private key>] [--print] [--fail-fast] [ssh args… | -- ssh args…]');
  const { key, pub, made } = pickKey(ctx, stringFlag(args, 'key'));
  if (made) println(ctx.stderr, `Made an SSH key for Portcullis: ${key}`);
  const api = authedClient(ctx);
  const path = `/v1/connections/${encodeURIComponent(name)}/ssh-certificate`;
  const reply = await api.json<SshCertificateReply>('POST', path, { publicKey: readFileSync(pub, 'utf8').trim(), ...(boolFlag(args, 'fail-fast') ? { mode: 'fail-fast' } : {}) });
  if (!reply || typeof reply.certificate !== 'string' || typeof reply.knownHosts !== 'string' || typeof reply.port !== 'number') {
    throw new ApiRequestError(`the api sent an unexpected answer for POST ${path}`, undefined, 'bad_response');
  }
  const dir = join(home(ctx), '.portcullis', 'ssh', name.replace(/[^A-Za-z0-9_-]/g, '_'));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const cert = join(dir, 'cert.pub');
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(cert, `${reply.certificate}\n`, { mode: 0o600 });
  chmodSync(cert, 0o600);
  writeFileSync(knownHosts, reply.knownHosts, { mode: 0o600 });
  const { options, command } = splitSshArgs(sshArgs);
  const argv = [
    '-i', key, '-o', `CertificateFile=${cert}`, '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes',
    '-p', String(reply.port), ...options, `${reply.user}@${reply.host}`, ...command, ...args.rest,
  ];
  const bin = ctx.env.PORTCULLIS_SSH?.trim() || 'ssh';
  if (boolFlag(args, 'print')) {
    println(ctx.stdout, [bin, ...argv].map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' '));
    println(ctx.stderr, `certificate valid until ${reply.expiresAt}`);
    return EXIT.ok;
  }
  println(ctx.stderr, `Connecting to ${name} through the gateway at ${reply.host}:${reply.port} (certificate valid until ${reply.expiresAt})`);
  return await new Promise<number>((resolve) => {
    const child = spawn(bin, argv, { stdio: 'inherit', env: ctx.env });
    const ignore = (): void => undefined; // ssh owns Ctrl-C
    process.on('SIGINT', ignore);
    child.once('error', (err: NodeJS.ErrnoException) => {
      process.off('SIGINT', ignore);
      println(ctx.stderr, err.code === 'ENOENT' ? `portcullis: ${bin} not found (install OpenSSH's client, or set PORTCULLIS_SSH)` : `portcullis: could not run ${bin}: ${err.message}`);
      resolve(EXIT.failed);
    });
    child.once('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      resolve(code ?? (signal ? EXIT.failed : EXIT.ok));
    });
  });
}
