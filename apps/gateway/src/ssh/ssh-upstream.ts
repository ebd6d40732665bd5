// ssh2 is CommonJS: Node's ESM loader (the built gateway) finds no named exports in it
import { connect } from 'node:net';
import ssh2, { type Client, type ClientChannel } from 'ssh2';
import { sshTargetSecretSchema } from '@portcullis/protocol';
import type { ResolvedConnection } from '../config/config-store.js';
import { coalesceWrites } from './write-coalescer.js';
import { blobType, hostKeyAlgorithmsFor, publicKeyBlob } from './ssh-keys.js';

/** Why the target could not be reached; `message` is what the client is told (no address, no user). */
export class SshUpstreamError extends Error {
  constructor(
    readonly reason: 'host_key_mismatch' | 'auth_failed' | 'unreachable' | 'misconfigured',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SshUpstreamError';
  }
}

const CONNECT_TIMEOUT_MS = 20_000;

/** ssh2's 'exit' arguments: a status, or a signal (null, name, core dumped, message). */
type ExitArgs = [code: number | null, signal?: string, dump?: boolean, desc?: string];
const exits = new WeakMap<ClientChannel, ExitArgs>();

/**
 * Keeps an upstream channel's exit status from the moment it opens. Call it in ssh2's open callback,
 * synchronously: ssh2 emits 'exit' once and does not keep it for later listeners, and a fast command's
 * exit-status can arrive in the same read as the channel's confirmation, before a caller that awaited
 * the channel has listened (its output waits in the channel, its status did not: the client saw no exit
 * status).
 */
export function keepExit(s: ClientChannel): ClientChannel {
  s.once('exit', (...args: ExitArgs) => void exits.set(s, args));
  return s;
}

/** Calls `fn` with the channel's exit status (kept by keepExit): at once if it has come, else when it comes. */
export function onExit(s: ClientChannel, fn: (...args: ExitArgs) => void): void {
  const seen = exits.get(s);
  if (seen) fn(...seen);
  else s.once('exit', fn);
}

/**
 * Opens the session's connection to the target with the credential only the gateway holds. The
 * target's host key must be one of the connection's pinned keys: anything else (a new key, a
 * man in the middle) is refused before a credential is sent.
 */
export function connectSshUpstream(conn: ResolvedConnection): Promise<Client> {
  const name = conn.name;
  const pinned = ((conn as { ssh?: { hostKeys?: string[] } }).ssh?.hostKeys ?? []).flatMap((line) => {
    try {
      return [publicKeyBlob(line)];
    } catch {
      return [];
    }
  });
  if (!pinned.length) return Promise.reject(new SshUpstreamError('misconfigured', `connection "${name}" has no pinned host key for its target; refused`));
  let secret: { password?: string; privateKey?: string; passphrase?: string };
  try {
    secret = sshTargetSecretSchema.parse(JSON.parse(conn.password ?? 'null'));
  } catch {
    return Promise.reject(new SshUpstreamError('misconfigured', `connection "${name}" has no usable target credential`));
  }
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let mismatch = false;
    let settled = false;
    const fail = (err: SshUpstreamError): void => {
      if (settled) return;
      settled = true;
      client.end();
      reject(err);
    };
    client.once('ready', () => {
      settled = true;
      // keystrokes are single small packets: Nagle would hold each behind the previous one's ACK
      client.setNoDelay(true);
      client.removeAllListeners('error');
      client.on('error', () => undefined);
      resolve(client);
    });
    client.on('error', (err: Error & { level?: string }) => {
      if (mismatch) return fail(new SshUpstreamError('host_key_mismatch', `the host key of connection "${name}"'s target does not match the pinned key; refused (the target changed its key, or someone is in between)`, { cause: err }));
      if (err.level === 'client-authentication') return fail(new SshUpstreamError('auth_failed', `the target of connection "${name}" refused the gateway's credential`, { cause: err }));
      fail(new SshUpstreamError('unreachable', `could not connect to the target of connection "${name}"`, { cause: err }));
    });
    client.connect({
      // our socket, so that its writes can be coalesced (one writev per tick, not three per packet)
      sock: coalesceWrites(connect({ host: conn.host, port: conn.port })),
      username: conn.username,
      ...(secret.password !== undefined ? { password: secret.password } : { privateKey: secret.privateKey!, ...(secret.passphrase ? { passphrase: secret.passphrase } : {}) }),
      readyTimeout: CONNECT_TIMEOUT_MS,
      keepaliveInterval: 30_000,
      tryKeyboard: false,
      algorithms: { serverHostKey: hostKeyAlgorithmsFor(pinned.map(blobType)) as never },
      hostVerifier: (key: Buffer) => {
        const ok = pinned.some((p) => p.equals(key));
        if (!ok) mismatch = true;
        return ok;
      },
    });
  });
}
