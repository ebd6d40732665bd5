import { createRequire } from 'node:module';
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
// ssh2 is CommonJS: Node's ESM loader (the built gateway) finds no named exports in it
import ssh2, { type Connection } from 'ssh2';
import { SSH_HOST_KEY_CONTEXT, openSealed } from '@portcullis/protocol';
import { SshSession, type SshSessionContext } from './ssh-session.js';
import { coalesceWrites } from './write-coalescer.js';
import { SourceLimiter } from './source-limiter.js';

const { Server: Ssh2Server } = ssh2;
type Ssh2Server = InstanceType<typeof Ssh2Server>;

export type SshListenerOptions = Omit<SshSessionContext, 'limiter'> & {
  /** opens the snapshot's sealed host key (GATEWAY_POOL_KEY) */
  poolKey: string;
  /** failed logins per address and minute before that address waits */
  maxAuthFailures?: number;
};

/** ssh2's optional native crypto binding (scripts/build-native.mjs builds it at install): one OpenSSL context per direction. */
export const SSH_NATIVE_CRYPTO: boolean = (() => {
  try {
    return (createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js') as { bindingAvailable?: boolean }).bindingAvailable === true;
  } catch {
    return false;
  }
})();

/**
 * Ciphers offered to clients. OpenSSH clients take their first preference the gateway offers:
 * chacha20-poly1305, then aes128-ctr (with HMAC-SHA-256, a second pass over every byte), then AES-GCM.
 * With ssh2's native binding, ChaCha20-Poly1305 and AES-GCM each cost about half of what CTR + HMAC does
 * on the gateway, so chacha20-poly1305 is offered — default clients get it, as they do from sshd.
 * Without the binding, ssh2 computes Poly1305 in JavaScript (several times slower): only AES is
 * offered. CTR stays for clients without AEAD ciphers (paramiko, older PuTTY).
 */
export const SSH_CIPHERS: readonly string[] = [
  ...(SSH_NATIVE_CRYPTO ? ['chacha20-poly1305@openssh.com'] : []),
  'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr',
];

/** How often what SSH sessions hold in flight is taken from (or given back to) the buffer budget. */
const BUFFER_SAMPLE_MS = 200;

/** The identification string (ssh2 adds "SSH-2.0-"): no version number for a scanner to match against. */
const IDENT = 'Portcullis';

/**
 * The SSH listener of a gateway: TCP accept, the pool's host key from the config snapshot (a new key
 * in the snapshot applies to the next connections), one SshSession per connection, registered with
 * the core's sessions.
 */
export class SshListener {
  private server: NetServer | null = null;
  private ssh: { sealed: string; server: Ssh2Server } | null = null;

  private readonly limiter: SourceLimiter;
  private readonly bySocket = new WeakMap<Socket, SshSession>();
  /** the sessions whose sockets are open (what bufferedBytes adds up) */
  private readonly open = new Set<SshSession>();
  /** samples what each session holds in flight against the buffer budget (SshSession.accountBuffers) */
  private accounting: NodeJS.Timeout | null = null;
  port = 0;

  constructor(private readonly o: SshListenerOptions) {
    this.limiter = new SourceLimiter(o.maxAuthFailures ?? 10);
  }

  async start(port: number, host: string): Promise<number> {
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server.on('error', (err) => this.o.core.logger.error({ err: err.message }, 'ssh listener error'));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    if (this.o.buffers) {
      this.accounting = setInterval(() => {
        for (const s of this.open) s.accountBuffers();
      }, BUFFER_SAMPLE_MS);
      this.accounting.unref();
    }
    if (!SSH_NATIVE_CRYPTO) this.o.core.logger.warn("ssh2's native crypto binding is not built (scripts/build-native.mjs, run by pnpm install): SSH sessions encrypt in JavaScript, at about twice the CPU per byte");
    return this.port;
  }

  /** The ssh2 server for the snapshot's host key (made again when the key changes); null without one. */
  private sshServer(): Ssh2Server | null {
    const config = this.o.core.currentConfig();
    const box = config?.snapshot.ssh?.hostKey;
    if (!box) return null;
    const sealed = box.ct;
    if (this.ssh?.sealed === sealed) return this.ssh.server;
    let hostKey: string;
    try {
      hostKey = openSealed(this.o.poolKey, box, SSH_HOST_KEY_CONTEXT);
    } catch (err) {
      this.o.core.logger.error({ err: (err as Error).message }, 'cannot open the pool\'s SSH host key with GATEWAY_POOL_KEY; SSH sessions are refused');
      return null;
    }
    const server = new Ssh2Server({ hostKeys: [hostKey], ident: IDENT, algorithms: { cipher: [...SSH_CIPHERS] as never } }, (conn: Connection) => {
      const socket = (conn as unknown as { _sock: Socket })._sock;
      const session = this.bySocket.get(socket);
      if (!session) return conn.end();
      session.attach(conn);
    });
    // errors of connections that never got a session (garbage before the version line)
    server.on('error', (err: Error) => this.o.core.logger.debug({ err: err.message }, 'ssh server error'));
    this.ssh = { sealed, server };
    return server;
  }

  private accept(socket: Socket): void {
    const server = this.sshServer();
    if (!server) {
      // RFC 4253 §4.2 lets a server send lines before its version: the client shows nothing useful,
      // but logs and `nc` do, and the connection closes at once rather than hanging
      socket.on('error', () => undefined);
      socket.end('portcullis: this gateway has no SSH host key for its pool yet (no config, or the api has not made one); try again shortly\r\n');
      this.o.core.metrics.sessionOutcome('ssh', 'no_host_key');
      return;
    }
    const session = new SshSession(socket, { core: this.o.core, policyFor: this.o.policyFor, loginGraceMs: this.o.loginGraceMs, limiter: this.limiter, maxChannels: this.o.maxChannels, buffers: this.o.buffers });
    this.o.core.sessions.add(session);
    this.open.add(session);
    socket.once('close', () => this.open.delete(session));
    this.bySocket.set(socket, session);
    try {
      server.injectSocket(coalesceWrites(socket));
    } catch (err) {
      this.o.core.logger.debug({ err: (err as Error).message }, 'ssh socket could not be taken');
      socket.destroy();
    }
  }

  /** Bytes the SSH sessions of this listener hold in flight (portcullis_gateway_ssh_buffered_bytes). */
  bufferedBytes(): number {
    let n = 0;
    for (const s of this.open) n += s.bufferedBytes;
    return n;
  }

  /** Stops accepting at once; settles when the sessions' connections are gone (the core ends them). */
  stop(): Promise<void> {
    if (this.accounting) clearInterval(this.accounting);
    return new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
