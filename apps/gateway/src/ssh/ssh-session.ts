import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { AuthContext, AuthenticationType, ClientChannel, Connection, PseudoTtyInfo, ServerChannel, Session, Client as UpstreamClient } from 'ssh2';
import { COMMAND_WORDING } from '../approvals/command-approvals.js';
import type { ResolvedPolicy } from '../config/config-store.js';
import { AccessRefused } from '../core/access.js';
import { shortageMessage, type BufferHold, type IdentityBuffers } from '../core/identity-buffers.js';
import { claimedSubject } from '../auth/credential-verifier.js';
import type { LiveSession, SessionCore, SessionEnding, SessionGrant } from '../core/session-core.types.js';
import type { SessionRecorder } from '../events/event-publisher.js';
import type { GatewayMetrics } from '../http/metrics.js';
import type { Logger } from '../logger.js';
import { LineTracker } from '../terminal/line-tracker.js';
import { MaskedOutput } from '../terminal/masked-output.js';
import { ScpWatcher, parseScpCommand, type ScpDecided, type ScpStep } from './scp-watcher.js';
import { SftpProxy } from './sftp-proxy.js';
import { CertificateRefused, checkUserCertificate, isCertificateType, verifySshSignature } from './ssh-keys.js';
import type { FileOp, TerminalPolicy, CommandVerdict, StreamMasker } from '../terminal/command-policy.types.js';
import { SshUpstreamError, connectSshUpstream, keepExit, onExit } from './ssh-upstream.js';
import type { SourceLimiter } from './source-limiter.js';
import { TerminalRecorder } from '../terminal/terminal-recorder.js';

const require = createRequire(import.meta.url);

/** What an SSH session needs besides the session core. */
export interface SshSessionContext {
  core: SessionCore;
  limiter: SourceLimiter;
  /** the session's decisions (null policy: a connection without one) */
  policyFor(policy: ResolvedPolicy | null): TerminalPolicy;
  /** how long a client may take from TCP connect to an authenticated session */
  loginGraceMs: number;
  /** channels one client connection may hold open at once (sessions and forwards); past it each open is refused */
  maxChannels: number;
  /**
   * The process buffer budget and each identity's share of it (GATEWAY_BUFFER_BYTES,
   * GATEWAY_SESSION_BUFFER_BYTES): what a session holds in flight is taken from both (accountBuffers).
   */
  buffers: IdentityBuffers | null;
}

/**
 * What a session holds in flight is taken from the process budget and its identity's share in steps of
 * this size (as it grows, sampled by the listener; given back as it drains). One stalled channel holds
 * at most about its windows' worth on each leg (2 MiB with ssh2: ~6 MiB measured).
 */
export const SSH_BUFFER_STEP = 1024 * 1024;

/** The client is told this and the connection closes; `reason` goes to the log and metrics. */
class Refusal extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** What a client may try next after a refusal it may retry (an empty list ends its attempts). */
const AUTH_METHODS: AuthenticationType[] = ['publickey', 'keyboard-interactive', 'password'];

/** Client bytes held while a line, exec or file operation waits for a decision, before reading stops. */
const MAX_HELD_BYTES = 256 * 1024;
const CTRL_U = Buffer.from([0x15]);
/** Environment variables one channel may set. */
const MAX_ENV_VARS = 64;

const HELD = Symbol('held for a drain');

/**
 * `dst` is full (its write returned false): stop reading `src` until it drains (one drain listener
 * however many writes). A paused ssh2 channel stops granting its peer window once its own buffer is
 * full, so the peer stops sending: what the gateway holds per channel stays within the windows.
 */
function holdUntilDrained(src: NodeJS.ReadableStream & { [HELD]?: boolean }, dst: NodeJS.WritableStream): void {
  if (src[HELD]) return;
  src[HELD] = true;
  src.pause();
  dst.once('drain', () => {
    src[HELD] = false;
    src.resume();
  });
}

/** Writes to `dst`; when it is full, stops reading `src` until it drains. */
function relay(src: NodeJS.ReadableStream & { [HELD]?: boolean }, dst: NodeJS.WritableStream, b: Buffer | string): void {
  if (!dst.write(b)) holdUntilDrained(src, dst);
}

/** Resolves once `w` can take more (or is gone). */
function drained(w: NodeJS.WritableStream & { writableNeedDrain?: boolean }): Promise<void> {
  if (!w.writableNeedDrain) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.once('drain', done);
    w.once('close', done);
  });
}

/** The signals an exit-signal may name (RFC 4254 6.10): ssh2 sends no other. */
const SSH_SIGNALS = new Set(['ABRT', 'ALRM', 'FPE', 'HUP', 'ILL', 'INT', 'KILL', 'PIPE', 'QUIT', 'SEGV', 'TERM', 'USR1', 'USR2']);

/**
 * Sends the client how the target's command ended: its exit status, or the signal that killed it. OpenSSH's
 * sshd sends any signal the protocol does not name (SIGBUS, SIGXCPU …) as "SIG@openssh.com", which ssh2
 * refuses to send on (it threw, in a 'close' handler: the gateway process died): that one is said on stderr
 * and no status goes — the client sees a command that ended without a status, as a killed one (OpenSSH
 * exits 255 for both).
 */
function sendExit(ch: ServerChannel, nl: string, code: number | null | undefined, sig?: string, dump?: boolean, desc?: string): void {
  if (typeof code === 'number') return ch.exit(code);
  if (!sig) return;
  const name = sig.replace(/^SIG/, '');
  if (SSH_SIGNALS.has(name)) return ch.exit(name, !!dump, desc ?? '');
  ch.stderr.write(`portcullis: the command was killed by a signal${name === 'SIG@openssh.com' ? '' : ` (${name})`}${nl}`);
}

/**
 * Lets go of a stream nobody will read any more — a client channel the client has closed (`gone`, see
 * sessionChannel), or the target's output for it: what the gateway still holds is dropped and it is read
 * to its end, so that its own 'close' comes — what the relay, the channel's slot and the session's
 * bookkeeping wait for.
 */
function letGo(s: NodeJS.ReadableStream): void {
  s.removeAllListeners('data');
  s.resume();
}

/**
 * Once the client has closed its channel: the target's channel is closed, and both are let go of — the
 * target's output nobody will read is dropped too (a relay paused for a client that did not read waited
 * for a 'drain' that a closed channel never gives: the target's channel never ended).
 */
function closeWhenGone(ch: ServerChannel, up: ClientChannel, gone: AbortSignal): void {
  const close = (): void => {
    up.close();
    for (const s of [ch, up, up.stderr]) letGo(s);
  };
  if (gone.aborted) close();
  else gone.addEventListener('abort', close, { once: true });
}

/** Bytes a stream holds in its buffers (both sides of a duplex). */
function streamBytes(s: { readableLength?: number; writableLength?: number } | null | undefined): number {
  return (s?.readableLength ?? 0) + (s?.writableLength ?? 0);
}

/**
 * One client connection to the SSH listener: authentication with a gateway credential (password,
 * keyboard-interactive, or an OpenSSH user certificate whose key id is one), the upstream SSH
 * connection with the credential only the gateway holds, and every channel the client opens —
 * exec and shell decided by command, SFTP and SCP by path, forwarding by destination — with
 * session events and terminal recordings. A LiveSession of the core: its admission, session.start,
 * approvals and live-config reactions (revoked credential, removed connection, lost access, policy
 * change) come from the core as for every protocol.
 */
export class SshSession implements LiveSession {
  readonly id = randomUUID();
  readonly protocol = 'ssh';
  private readonly log: Logger;
  private readonly metrics: GatewayMetrics;
  private readonly source: string;
  private conn: Connection | null = null;
  /** set once the core admitted the session */
  grant: SessionGrant | null = null;
  /** the certified public key whose signature verified (a key-bound credential's proof) */
  private certifiedKey: Buffer | null = null;
  policy: TerminalPolicy | null = null;
  private upstream: UpstreamClient | null = null;
  private recorder: SessionRecorder | null = null;
  private readonly aborter = new AbortController();
  private readonly startedAt = Date.now();
  private readonly channels = new Set<ServerChannel>();
  /** every channel of either connection the session relays (what bufferedBytes adds up) */
  private readonly relayed = new Set<ServerChannel | ClientChannel>();
  /** channels the client holds open (sessions not yet started included), against ctx.maxChannels */
  private openChannels = 0;
  /** client input a shell holds while its lines are decided */
  private shellHeld = 0;
  private streams = 0;
  private ended = false;
  private graceTimer: NodeJS.Timeout | null = null;
  /** counted in the live-sessions gauge */
  private counted = false;
  live = false;
  bytesIn = 0;
  bytesOut = 0;

  constructor(
    private readonly socket: Socket,
    private readonly ctx: SshSessionContext,
  ) {
    this.source = socket.remoteAddress ?? 'unknown';
    this.log = ctx.core.logger.child({ session: this.id, protocol: 'ssh' });
    this.metrics = ctx.core.metrics;
    socket.setNoDelay(true);
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'client socket error'));
    socket.on('close', () => this.finish(this.closing ?? 'client_closed'));
    // a client that never finishes the handshake and login is closed (one slot less for a flood)
    this.graceTimer = setTimeout(() => {
      if (!this.live) {
        this.log.info({ source: this.source }, 'login grace time over; closing');
        this.metrics.sessionOutcome('ssh', 'login_timeout');
        socket.destroy();
      }
    }, ctx.loginGraceMs);
    this.graceTimer.unref();
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * What this session holds in memory for bytes in flight: both sides of every channel it relays (ssh2
   * stream buffers, stderr included), what a shell holds for decisions, and both sockets' write queues.
   * Bounded by backpressure and the channel limit (portcullis_gateway_ssh_buffered_bytes adds them up).
   */
  get bufferedBytes(): number {
    let n = this.socket.writableLength + this.shellHeld;
    n += (this.upstream as unknown as { _sock?: { writableLength?: number } } | null)?._sock?.writableLength ?? 0;
    for (const c of this.relayed) n += streamBytes(c) + streamBytes(c.stderr as never);
    return n;
  }

  /** what this session has taken from the process budget and its identity's share for bufferedBytes */
  private bufferHold: BufferHold | null = null;

  /**
   * The listener calls this a few times a second: what the session holds in flight (bufferedBytes) is
   * taken from the process budget (GATEWAY_BUFFER_BYTES) and from its identity's share across all its
   * connections (GATEWAY_SESSION_BUFFER_BYTES) as it grows, and given back as it drains — so idle and
   * flowing sessions cost nothing, and only stalled ones hold. When either cannot give more, the
   * session ends saying why: one identity's stalled connections cannot take the memory other sessions
   * need (between two samples a session grows by at most its channels' windows).
   */
  accountBuffers(): void {
    const buffers = this.ctx.buffers;
    if (!buffers || !this.grant || this.ended || this.closing) return;
    const want = Math.ceil(this.bufferedBytes / SSH_BUFFER_STEP) * SSH_BUFFER_STEP;
    const hold = (this.bufferHold ??= buffers.hold(this.grant.claims.sub));
    if (want < hold.bytes) return hold.giveBack(hold.bytes - want);
    if (want === hold.bytes) return;
    const short = hold.take(want - hold.bytes);
    if (!short) return;
    const identity = this.grant.claims.sub;
    const reason = short === 'share' ? 'identity_buffer_share' : 'buffer_budget';
    this.log.info({ short, identity, held: buffers.heldBy(identity), want, share: buffers.shareBytes }, 'session ended: buffer memory');
    const why = shortageMessage(short, `what this connection holds in flight (${want} bytes, output or input its peer has not taken)`, buffers.shareBytes, 'SSH connections');
    this.metrics.sessionTerminated('ssh', reason);
    this.terminate(reason, short === 'share' ? `${why} (they hold ${buffers.heldBy(identity)} bytes)` : why);
  }

  /** Counts a channel's bytes from now until it closes. */
  private track(c: ServerChannel | ClientChannel): void {
    this.relayed.add(c);
    c.once('close', () => this.relayed.delete(c));
  }

  /**
   * Takes one of the connection's channel slots; returns its release (idempotent: call it on every
   * 'close' that may mean the channel is gone), or null — the open refused with why — when none is left.
   */
  private takeChannelSlot(reject: () => void): (() => void) | null {
    if (this.openChannels >= this.ctx.maxChannels) {
      this.metrics.channelsRefused.inc({ reason: 'channels' });
      this.log.info({ limit: this.ctx.maxChannels }, 'channel refused: too many open channels');
      this.refuseOpen(reject, `too many open channels on this connection (at most ${this.ctx.maxChannels}); close one or open another connection`);
      return null;
    }
    this.openChannels++;
    let released = false;
    return (): void => {
      if (released) return;
      released = true;
      this.openChannels--;
    };
  }

  /** The ssh2 connection for this socket has read the client's version line. */
  attach(conn: Connection): void {
    this.conn = conn;
    conn.on('error', (err: Error) => this.log.debug({ err: err.message }, 'ssh connection error'));
    conn.on('authentication', (a: AuthContext) => void this.authenticate(a));
    conn.on('ready', () => this.ready());
    conn.on('close', () => this.finish(this.closing ?? 'client_closed'));
  }

  // ---------------------------------------------------------------------------------------------
  // Authentication

  /** SSH_MSG_USERAUTH_BANNER: the OpenSSH client prints it — how a refusal is explained before auth ends. */
  private banner(text: string): void {
    const proto = (this.conn as unknown as { _protocol?: { _packetRW: { write: { allocStart: number; alloc(n: number): Buffer; finalize(p: Buffer): Buffer } } } })?._protocol;
    if (!proto) return;
    try {
      const { sendPacket } = require('ssh2/lib/protocol/utils.js') as { sendPacket(p: unknown, b: Buffer): void };
      const msg = `portcullis: ${text}\r\n`;
      const len = Buffer.byteLength(msg);
      let p = proto._packetRW.write.allocStart;
      const packet = proto._packetRW.write.alloc(1 + 4 + len + 4);
      packet[p] = 53; // USERAUTH_BANNER
      packet.writeUInt32BE(len, ++p);
      packet.write(msg, (p += 4), len, 'utf8');
      packet.writeUInt32BE(0, p + len);
      sendPacket(proto, proto._packetRW.write.finalize(packet));
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'could not send an auth banner');
    }
  }

  private authBusy = false;

  private async authenticate(a: AuthContext): Promise<void> {
    if (this.ended) return;
    const connection = a.username;
    const wait = this.ctx.limiter.blockedFor(this.source);
    if (wait > 0) {
      this.banner(`too many failed logins from this address; try again in ${wait} s`);
      this.metrics.sessionOutcome('ssh', 'rate_limited');
      // refused without being verified, and still on the trail (aggregated like any other refusal)
      if (a.method !== 'none') {
        this.ctx.core.authFailed(
          { source: this.source, identity: (a.method === 'password' && claimedSubject(a.password)) || null, reason: 'rate_limited', target: connection, detail: `too many failed logins from this address; refused for ${wait} s without checking` },
          connection,
          'ssh',
        );
      }
      return a.reject([]);
    }
    if (a.method === 'none') return a.reject(AUTH_METHODS);
    if (this.authBusy) return a.reject(AUTH_METHODS);
    let token: string | null = null;
    let certified = false;
    try {
      if (a.method === 'password') token = a.password;
      else if (a.method === 'keyboard-interactive') {
        token = await new Promise<string | null>((resolve) => {
          a.prompt([{ prompt: 'Password (gateway credential): ', echo: false }], 'Portcullis', `Connection "${connection}": paste the credential from POST /v1/connections/${connection}/credentials`, (answers: string[] | Error) => {
            resolve(Array.isArray(answers) ? (answers[0] ?? null) : null);
          });
        });
        if (token === null) return;
      } else if (a.method === 'publickey') {
        token = this.certificateToken(a);
        if (token === null) return; // answered (PK_OK, or a plain key refused without counting as a failure)
        certified = true;
      } else {
        return a.reject(AUTH_METHODS);
      }
    } catch (err) {
      if (err instanceof CertificateRefused) {
        this.ctx.limiter.fail(this.source);
        this.ctx.core.authFailed({ source: this.source, identity: null, reason: 'invalid', target: connection, detail: err.message }, connection, 'ssh');
        this.banner(err.message);
        return a.reject(AUTH_METHODS);
      }
      throw err;
    }
    this.authBusy = true;
    try {
      if (!this.ctx.core.currentConfig()) throw new Refusal('no_config', 'the gateway has not received its configuration yet; try again shortly');
      let grant: SessionGrant;
      try {
        grant = await this.ctx.core.authenticate({
          protocol: 'ssh', token, connection, source: this.source, claimedUser: null,
          ...(certified && this.certifiedKey ? { proof: { sshKeyBlob: this.certifiedKey } } : {}),
        });
      } catch (err) {
        // a credential refused (counted and recorded by the core): the client may try another
        if (err instanceof AccessRefused && (err.reason.startsWith('auth_') || err.reason === 'unknown_connection')) {
          this.ctx.limiter.fail(this.source);
          this.banner(`${certified ? 'certificate' : 'credential'} refused: ${err.message}`);
          return a.reject(err.reason === 'unknown_connection' ? [] : AUTH_METHODS);
        }
        throw err;
      }
      await this.open(grant);
      if (this.ended) return;
      this.live = true;
      if (this.graceTimer) clearTimeout(this.graceTimer);
      a.accept();
      this.ctx.core.sessions.live(this);
    } catch (err) {
      const r = err instanceof Refusal ? err : err instanceof AccessRefused ? new Refusal(err.reason, err.message) : new Refusal('internal', 'the gateway could not open this session');
      if (!(err instanceof Refusal || err instanceof AccessRefused)) this.log.warn({ err: (err as Error).message }, 'ssh session failed to open');
      this.metrics.sessionOutcome('ssh', r.reason);
      this.log.info({ reason: r.reason, msg: r.message }, 'session refused');
      this.banner(r.message);
      a.reject([]);
      this.finish(r.reason);
    } finally {
      this.authBusy = false;
    }
  }

  /**
   * A publickey request: only OpenSSH user certificates of the pool's user CA, for this connection,
   * whose key id is a gateway credential. Returns the key id once the client's signature verifies;
   * null when the request was answered here (a query: PK_OK; a plain key: refused quietly — clients
   * offer every key they have, which is no attack).
   */
  private certificateToken(a: AuthContext & { method: 'publickey' }): string | null {
    if (!isCertificateType(a.key.algo)) {
      a.reject(AUTH_METHODS);
      return null;
    }
    const ca = this.ctx.core.currentConfig()?.snapshot.ssh?.userCaPublicKey;
    if (!ca) throw new CertificateRefused('this gateway pool has no user CA; use the credential as the password');
    const { cert, keyType, key } = checkUserCertificate(a.key.data, ca, a.username);
    if (!a.signature || !a.blob) {
      a.accept(); // the client may now sign with it
      return null;
    }
    if (!verifySshSignature(keyType, key, a.blob, a.signature)) throw new CertificateRefused('the signature with the certified key does not verify');
    this.certifiedKey = cert.publicKeyBlob;
    return cert.keyId;
  }

  /** After the core admitted it: the policy's decisions, session.start, the target. Throws Refusal or AccessRefused. */
  private async open(grant: SessionGrant): Promise<void> {
    const conn = grant.connection;
    this.grant = grant;
    this.policy = this.ctx.policyFor(grant.policy);
    this.recorder = await this.ctx.core.startRecording(
      this.id,
      grant,
      {
        protocol: 'ssh',
        clientAddr: this.source,
        user: conn.name,
        database: conn.name,
        clientVersion: (this.conn as unknown as { _protocol?: { _remoteIdentRaw?: string } })?._protocol?._remoteIdentRaw ?? null,
      },
      (err) => this.recordingFailed('recording_failed', `session recording failed (${err.message}); this connection requires it`),
      this.log,
    );
    try {
      const t0 = process.hrtime.bigint();
      this.upstream = await connectSshUpstream(conn);
      this.metrics.upstreamConnect.observe(Number(process.hrtime.bigint() - t0) / 1e9);
    } catch (err) {
      this.metrics.errors.inc({ kind: 'upstream' });
      const e = err instanceof SshUpstreamError ? err : null;
      this.log.warn({ err: (err as Error).message, cause: (e?.cause as Error | undefined)?.message, connection: conn.name }, 'upstream ssh connection failed');
      throw new Refusal(e ? `upstream_${e.reason}` : 'upstream_failed', e?.message ?? `could not connect to the target of connection "${conn.name}"`);
    }
    if (this.ended) {
      this.upstream.end();
      return;
    }
    this.upstream.on('close', () => this.finish(this.closing ?? 'upstream_closed'));
    this.upstream.on('error', (err: Error) => this.log.debug({ err: err.message }, 'upstream ssh error'));
    this.metrics.sessionOutcome('ssh', 'ok');
    this.metrics.sessionLive('ssh', 1);
    this.counted = true;
    this.log.info({ connection: conn.name, subject: grant.claims.sub }, 'ssh session started');
  }

  // ---------------------------------------------------------------------------------------------
  // Channels

  private ready(): void {
    const conn = this.conn!;
    this.describeOpenFailures(conn);
    conn.on('session', (accept: () => Session, reject: () => void) => {
      if (this.closing) return reject();
      const release = this.takeChannelSlot(reject);
      if (!release) return;
      const session = accept();
      // ssh2 emits 'close' on the Session while no exec/shell/subsystem started; after, on the channel
      session.once('close', release);
      this.sessionChannel(session, release);
    });
    conn.on('tcpip', (accept: () => ServerChannel, reject: () => void, info: { srcIP: string; srcPort: number; destIP: string; destPort: number }) => this.directTcpip(accept, reject, info));
    conn.on('request', (accept: ((port?: number) => void) | undefined, reject: (() => void) | undefined, name: string, info: { bindAddr?: string; bindPort?: number }) => {
      if (name === 'tcpip-forward' && info?.bindAddr !== undefined) return this.remoteForward(accept, reject, info.bindAddr, info.bindPort ?? 0);
      if (name === 'cancel-tcpip-forward' && info?.bindAddr !== undefined) return this.cancelRemoteForward(accept, reject, info.bindAddr, info.bindPort ?? 0);
      this.log.info({ request: name }, 'global request refused');
      this.connectionNotes.push(`${name === 'streamlocal-forward@openssh.com' ? 'remote forwarding of a unix socket' : name} is refused by the gateway`);
      reject?.();
    });
    conn.on('openssh.streamlocal', (_a: unknown, reject: () => void) => this.refuseOpen(reject, 'forwarding to a unix socket is refused by the gateway'));
  }

  /** Refusals of connection-wide requests (-R): printed on the stderr of the session channels that follow. */
  private readonly connectionNotes: string[] = [];
  /** the description the next channel open failure carries (ssh2's reject() sends none) */
  private openFailure: string | null = null;

  /**
   * ssh2 answers a refused channel open with no description; OpenSSH prints the description
   * (`channel 2: open failed: administratively prohibited: <why>`), so the refusal says why.
   */
  private describeOpenFailures(conn: Connection): void {
    const proto = (conn as unknown as { _protocol?: { channelOpenFail(recipient: number, reason: number, desc?: string): void } })._protocol;
    if (!proto) return;
    const original = proto.channelOpenFail.bind(proto);
    proto.channelOpenFail = (recipient, reason, desc) => {
      const why = this.openFailure;
      this.openFailure = null;
      // 1: SSH_OPEN_ADMINISTRATIVELY_PROHIBITED
      return why ? original(recipient, 1, why) : original(recipient, reason, desc);
    };
  }

  private refuseOpen(reject: () => void, why: string): void {
    this.openFailure = `portcullis: ${why}`;
    try {
      reject();
    } finally {
      this.openFailure = null;
    }
  }

  private emit(type: string, data: Record<string, unknown>): void {
    (this.recorder as unknown as { emit(t: string, d: Record<string, unknown>): void } | null)?.emit(type, data);
  }

  private newStream(kind: string): string {
    return `${kind}-${++this.streams}`;
  }

  private sessionChannel(session: Session, release: () => void): void {
    // The client closed the channel. ssh2 emits its CHANNEL_CLOSE on the Session at once; the channel's own
    // 'close' waits until its readable side has been read to the end, which a paused channel (input held
    // while a decision is pending, or while the target does not read) never is: a command approved after
    // its client had gone was still run, and its target channel kept open until the session ended.
    const gone = new AbortController();
    session.once('close', () => gone.abort());
    let pty: PseudoTtyInfo | null = null;
    const env: Record<string, string> = {};
    const notes: string[] = [];
    let resize: ((cols: number, rows: number, height: number, width: number) => void) | null = null;
    let signal: ((name: string) => void) | null = null;
    session.on('pty', (accept: () => void, _reject: unknown, info: PseudoTtyInfo) => {
      pty = info;
      accept?.();
    });
    session.on('window-change', (accept: (() => void) | undefined, _reject: unknown, info: { cols: number; rows: number; height: number; width: number }) => {
      if (pty) Object.assign(pty, { cols: info.cols, rows: info.rows, height: info.height, width: info.width });
      resize?.(info.cols, info.rows, info.height, info.width);
      accept?.();
    });
    session.on('env', (accept: (() => void) | undefined, reject: (() => void) | undefined, info: { key: string; val: string }) => {
      const d = Object.keys(env).length >= MAX_ENV_VARS
        ? { allowed: false, reason: `more than ${MAX_ENV_VARS} environment variables; the rest are refused` }
        : (this.policy?.env(info.key, info.val) ?? { allowed: false, reason: 'no session' });
      if (d.allowed) {
        env[info.key] = info.val;
        accept?.();
      } else {
        // OpenSSH sends SendEnv/SetEnv without asking for a reply: the refusal is said on stderr
        this.log.debug({ key: info.key }, 'environment variable refused by policy');
        if (!notes.includes(d.reason ?? '')) notes.push(d.reason ?? `environment variable ${info.key} is refused`);
        reject?.();
      }
    });
    session.on('auth-agent', (_accept: unknown, reject: (() => void) | undefined) => {
      notes.push('agent forwarding is refused by the gateway');
      reject?.();
    });
    session.on('x11', (_accept: unknown, reject: (() => void) | undefined) => {
      notes.push('X11 forwarding is refused by the gateway');
      reject?.();
    });
    session.on('signal', (accept: (() => void) | undefined, reject: (() => void) | undefined, info: { name: string }) => {
      // ssh2's signal() throws on a name RFC 4254 does not list, which ended the client's whole connection
      // (every channel, no reason given): refused alone, as OpenSSH's sshd does ("unsupported signal")
      if (!SSH_SIGNALS.has(info.name.toUpperCase().replace(/^SIG/, ''))) {
        this.log.info({ signal: info.name.slice(0, 64) }, 'signal request refused: not a signal the SSH protocol names');
        return reject?.();
      }
      signal?.(info.name);
      accept?.();
    });
    const started = (ch: ServerChannel): void => {
      this.channels.add(ch);
      this.track(ch);
      ch.once('close', release);
      ch.on('close', () => this.channels.delete(ch));
      for (const n of [...this.connectionNotes.splice(0), ...notes]) ch.stderr.write(`portcullis: ${n}\r\n`);
    };
    session.on('exec', (accept: () => ServerChannel, _reject: unknown, info: { command: string }) => {
      const ch = accept();
      started(ch);
      void this.exec(ch, info.command, pty, env, gone.signal, (r, s) => {
        resize = r;
        signal = s;
      });
    });
    session.on('shell', (accept: () => ServerChannel) => {
      const ch = accept();
      started(ch);
      void this.shell(ch, pty, env, gone.signal, (r, s) => {
        resize = r;
        signal = s;
      });
    });
    session.on('subsystem', (accept: () => ServerChannel, reject: () => void, info: { name: string }) => {
      if (info.name !== 'sftp') {
        this.log.info({ subsystem: info.name }, 'subsystem refused');
        return reject();
      }
      const ch = accept();
      started(ch);
      void this.sftp(ch, gone.signal);
    });
  }

  /** Asks for the decision's approval when it needs one; tells the client what it waits for. */
  private async settle(verdict: CommandVerdict, text: string, say: (line: string) => void, gone: AbortSignal): Promise<{ run: boolean; message: string | null; approvalId?: string }> {
    if (verdict.action === 'allow') return { run: true, message: null };
    const why = `${verdict.rule ? `rule ${verdict.rule}` : 'policy'}${verdict.reason ? `: ${verdict.reason}` : ''}`;
    if (verdict.action === 'block') return { run: false, message: `refused by ${why}` };
    const outcome = await this.requestApproval(text, verdict, say, gone);
    return outcome.approved ? { run: true, message: null, approvalId: outcome.approvalId } : { run: false, message: outcome.message, approvalId: outcome.approvalId };
  }

  /** `gone`: the client closed the channel the command came on; its approval is withdrawn (cancelled). */
  private async requestApproval(text: string, verdict: CommandVerdict, say: (line: string) => void, gone: AbortSignal): Promise<{ approved: boolean; approvalId?: string; message: string }> {
    const rule = verdict.rule ?? 'unnamed';
    if (gone.aborted) return { approved: false, message: 'the channel was closed' };
    const approvals = this.ctx.core.approvalsFor(this.id, this.grant!, this.recorder, AbortSignal.any([this.aborter.signal, gone]), this.log, COMMAND_WORDING);
    if (!approvals) return { approved: false, message: `approval required by rule ${rule}, but approvals are not available on this gateway; not run` };
    const why = `${rule}${verdict.reason ? `: ${verdict.reason}` : ''}`;
    const r = await approvals.request({ text, rule: verdict.rule, reason: verdict.reason }, (n) => say(`waiting for approval ${n.approvalId} (${why})… ${n.message}`));
    return r.approved ? { approved: true, ...(r.approvalId ? { approvalId: r.approvalId } : {}), message: '' } : { approved: false, ...(r.approvalId ? { approvalId: r.approvalId } : {}), message: r.message };
  }

  private commandEvent(stream: string, source: 'exec' | 'shell' | 'scp', command: string, v: CommandVerdict, extra: Record<string, unknown> = {}): void {
    this.metrics.countDecision(v.action);
    this.emit('command', {
      stream, source, command, action: v.action, rule: v.rule, reason: v.reason,
      policy: this.policy?.name ?? null, policyVersion: this.policy?.version ?? null,
      ...(v.commands ? { commands: v.commands } : {}), ...(v.dynamic ? { dynamic: true } : {}), ...extra,
    });
  }

  private async exec(ch: ServerChannel, command: string, pty: PseudoTtyInfo | null, env: Record<string, string>, gone: AbortSignal, controls: (r: (c: number, r: number, h: number, w: number) => void, s: (n: string) => void) => void): Promise<void> {
    const stream = this.newStream('exec');
    const nl = pty ? '\r\n' : '\n';
    const say = (line: string): void => void ch.stderr.write(`portcullis: ${line}${nl}`);
    const scp = parseScpCommand(command);
    // with a terminal, what is typed into the command (`ssh -t host bash`) is decided line by line below
    // held client input (the command's stdin) while the decision is pending
    const held: Buffer[] = [];
    const hold = (b: Buffer): void => void held.push(b);
    ch.on('data', hold);
    ch.pause();
    const p = this.policy!;
    let verdict = await (p.commandAsync?.(command, { unseenInput: !pty }) ?? p.command(command, { unseenInput: !pty }));
    if (scp === 'refused') verdict = { action: 'block', rule: null, reason: 'an scp command with shell syntax in its paths is refused (use plain paths)' };
    const d = await this.settle(verdict, command, say, gone);
    this.commandEvent(stream, scp && scp !== 'refused' ? 'scp' : 'exec', command, verdict, d.approvalId ? { approvalId: d.approvalId, approved: d.run } : {});
    // nobody is left to run it for (an approval that came as the client went included)
    if (gone.aborted) return letGo(ch);
    if (!d.run || this.ended) {
      say(d.message ?? 'refused');
      ch.exit(1);
      ch.end();
      ch.close();
      return;
    }
    // relative scp paths are decided from the login directory: asked before the command's channel opens,
    // so that nothing is awaited between its open and its relay
    const home = scp && scp !== 'refused' && scp.paths.some((p) => !p.startsWith('/')) ? await this.homeDirectory() : '/';
    let up: ClientChannel;
    try {
      if (gone.aborted) return letGo(ch);
      up = await new Promise<ClientChannel>((resolve, reject) => {
        this.upstream!.exec(command, { env, ...(pty ? { pty: { rows: pty.rows, cols: pty.cols, height: pty.height, width: pty.width, term: pty.term, modes: pty.modes } } : {}) } as never, (err, s) => (err ? reject(err) : resolve(keepExit(s))));
      });
    } catch (err) {
      say(`the target refused the command channel (${(err as Error).message})`);
      ch.exit(1);
      ch.close();
      return;
    }
    ch.off('data', hold);
    closeWhenGone(ch, up, gone);
    if (gone.aborted) return;
    if (scp && scp !== 'refused') {
      this.relayScp(ch, up, scp, stream, held, home, gone);
    } else {
      const rec = new TerminalRecorder(stream, (data) => this.emit('terminal', data), { ...(pty ? { width: pty.cols, height: pty.rows } : {}), command });
      const model = pty ? this.policy!.lineModel() : null;
      this.relayTerminal(ch, up, pty !== null, rec, held, model ? { lines: new LineTracker(model), stream, nl: '\r\n' } : null, gone);
    }
    controls(
      (c, r, h, w) => up.setWindow(r, c, h, w),
      (name) => up.signal(name),
    );
  }

  private async shell(ch: ServerChannel, pty: PseudoTtyInfo | null, env: Record<string, string>, gone: AbortSignal, controls: (r: (c: number, r: number, h: number, w: number) => void, s: (n: string) => void) => void): Promise<void> {
    const stream = this.newStream('shell');
    let up: ClientChannel;
    try {
      up = await new Promise<ClientChannel>((resolve, reject) => {
        const window = pty ? { rows: pty.rows, cols: pty.cols, height: pty.height, width: pty.width, term: pty.term, modes: pty.modes } : false;
        this.upstream!.shell(window as never, { env } as never, (err, s) => (err ? reject(err) : resolve(keepExit(s))));
      });
    } catch (err) {
      ch.stderr.write(`portcullis: the target refused the shell (${(err as Error).message})\r\n`);
      ch.exit(1);
      ch.close();
      return;
    }
    closeWhenGone(ch, up, gone);
    if (gone.aborted) return;
    const rec = new TerminalRecorder(stream, (data) => this.emit('terminal', data), pty ? { width: pty.cols, height: pty.rows } : {});
    // no policy, no model: every line is allowed, keystrokes (Enter included) pass as they come
    const model = this.policy!.lineModel();
    this.relayTerminal(ch, up, pty !== null, rec, [], model ? { lines: new LineTracker(model), stream, nl: pty ? '\r\n' : '\n' } : null, gone);
    controls(
      (c, r, h, w) => {
        up.setWindow(r, c, h, w);
        rec.resize(c, r);
      },
      (name) => up.signal(name),
    );
  }

  /**
   * Relays a terminal (exec or shell) both ways: output through the masker to the client and the
   * recording; input to the target — for a shell, through the line tracker, each Enter held until
   * its line is decided.
   */
  private relayTerminal(ch: ServerChannel, up: ClientChannel, tty: boolean, rec: TerminalRecorder, held: Buffer[], shell: { lines: LineTracker; stream: string; nl: string } | null, gone: AbortSignal): void {
    let masker: StreamMasker | null;
    let stderrMasker: StreamMasker | null;
    try {
      masker = this.policy!.masker();
      stderrMasker = masker ? this.policy!.masker() : null;
    } catch (err) {
      ch.stderr.write(`portcullis: output cannot be masked as the policy requires (${(err as Error).message}); closed\r\n`);
      up.close();
      ch.exit(1);
      ch.close();
      return;
    }
    // a terminal's output is text; without one (`ssh host cat /bin/ls`, `tar c`) it is masked byte for byte
    const stdout = new MaskedOutput(masker, { tty });
    const stderr = new MaskedOutput(stderrMasker, { tty });
    const out = (buf: Buffer, o: MaskedOutput, toStderr: boolean): boolean => {
      this.bytesOut += buf.length;
      const { wire, shown } = o.push(buf);
      rec.output(shown);
      shell?.lines.output(shown);
      if (!wire.length) return true;
      return toStderr ? ch.stderr.write(wire) : ch.write(wire);
    };
    this.track(up);
    // each output stream stops being read while the client's side of it is full (a client that does not
    // read its stderr, `cat /dev/zero >&2`, held the gateway's memory without bound before)
    up.on('data', (b: Buffer) => {
      if (!out(b, stdout, false)) holdUntilDrained(up, ch);
    });
    up.stderr.on('data', (b: Buffer) => {
      if (!out(b, stderr, true)) holdUntilDrained(up.stderr, ch.stderr);
    });
    const flush = (): void => {
      for (const [o, dst] of [[stdout, ch], [stderr, ch.stderr]] as const) {
        const { wire, shown } = o.flush();
        rec.output(shown);
        if (wire.length) dst.write(wire);
      }
    };
    // the exit status goes out after the output: 'exit' may come while output is still queued in a
    // paused channel, and 'close' comes once it has all been read (what the masker holds goes first)
    let exit: (() => void) | null = null;
    onExit(up, (code, sig, dump, desc) => {
      exit = () => sendExit(ch, tty ? '\r\n' : '\n', code, sig, dump, desc);
    });
    up.on('close', () => {
      flush();
      exit?.();
      rec.end();
      ch.end();
      ch.close();
    });
    ch.on('close', () => {
      rec.end();
      up.close();
    });
    ch.on('end', () => up.end());

    // client → target
    const input = shell ? this.shellInput(ch, up, shell, rec, gone) : (b: Buffer) => {
      this.bytesIn += b.length;
      relay(ch, up, b);
    };
    for (const b of held) input(b);
    ch.on('data', input);
    ch.resume();
  }

  /** Keystrokes go upstream as typed; the Enter that would run a line waits for its decision. */
  private shellInput(ch: ServerChannel, up: ClientChannel, shell: { lines: LineTracker; stream: string; nl: string }, rec: TerminalRecorder, gone: AbortSignal): (b: Buffer) => void {
    const queue: Buffer[] = [];
    let queued = 0;
    let deciding = false;
    const say = (line: string): void => {
      const text = `${shell.nl}portcullis: ${line}${shell.nl}`;
      rec.output(text);
      ch.write(text);
    };
    const pump = async (): Promise<void> => {
      if (deciding) return;
      deciding = true;
      try {
        while (queue.length && !this.ended) {
          // the target takes input no faster than it reads it: wait for it rather than queue it here
          await drained(up);
          if (this.ended) return;
          const chunk = queue.shift()!;
          queued -= chunk.length;
          this.shellHeld -= chunk.length;
          let from = 0;
          for (let i = 0; i < chunk.length; i++) {
            if (!shell.lines.feed(chunk[i]!)) continue;
            // the bytes before the Enter go up as typed; the Enter waits
            if (i > from) up.write(chunk.subarray(from, i));
            from = i + 1;
            const line = shell.lines.take();
            if (!line.text.trim()) {
              up.write(chunk.subarray(i, i + 1));
              continue;
            }
            const p = this.policy!;
            const asked = { text: line.text, reliable: line.reliable, reasons: line.reasons };
            const verdict = await (p.lineAsync?.(asked) ?? p.line(asked));
            if (this.ended) return;
            if (verdict.incomplete && verdict.action !== 'block') {
              // the shell asks for the rest and runs nothing on this Enter: decided once whole
              shell.lines.carry(line.text);
              up.write(chunk.subarray(i, i + 1));
              continue;
            }
            const d = verdict.action === 'allow' ? { run: true, message: null } : await this.settle(verdict, line.text, say, gone);
            this.commandEvent(shell.stream, 'shell', line.text, verdict, { reliable: line.reliable, ...(line.reasons.length ? { unreliableBecause: line.reasons } : {}), ...(d.approvalId ? { approvalId: d.approvalId, approved: d.run } : {}) });
            if (this.ended || gone.aborted) return;
            if (d.run) {
              up.write(chunk.subarray(i, i + 1));
            } else {
              // the line never runs: cleared on the host instead of entered
              up.write(CTRL_U);
              shell.lines.clear();
              say(d.message ?? 'refused');
            }
          }
          if (from < chunk.length) up.write(chunk.subarray(from));
          if (queued < MAX_HELD_BYTES) ch.resume();
        }
      } finally {
        deciding = false;
      }
    };
    return (b: Buffer) => {
      this.bytesIn += b.length;
      queue.push(b);
      queued += b.length;
      this.shellHeld += b.length;
      if (queued >= MAX_HELD_BYTES) ch.pause();
      void pump();
    };
  }

  private fileEvent(stream: string, op: FileOp, v: CommandVerdict, via: 'sftp' | 'scp', extra: Record<string, unknown> = {}): void {
    this.metrics.countDecision(v.action);
    this.emit('file', { stream, via, ...op, action: v.action, rule: v.rule, reason: v.reason, ...extra });
  }

  private async sftp(ch: ServerChannel, gone: AbortSignal): Promise<void> {
    const stream = this.newStream('sftp');
    const held: Buffer[] = [];
    const hold = (b: Buffer): void => void held.push(b);
    ch.on('data', hold);
    // paused until the relay listens: flowing, the client's EOF ('end') could come while the subsystem
    // opened, with nobody to pass it on — the target's sftp-server never ended, nor did the channel
    ch.pause();
    let up: ClientChannel;
    try {
      up = await new Promise<ClientChannel>((resolve, reject) => this.upstream!.subsys('sftp', (err, s) => (err ? reject(err) : resolve(keepExit(s)))));
    } catch (err) {
      ch.stderr.write(`portcullis: the target refused the sftp subsystem (${(err as Error).message})\r\n`);
      ch.close();
      return;
    }
    ch.off('data', hold);
    closeWhenGone(ch, up, gone);
    if (gone.aborted) return;
    this.track(up);
    const say = (): void => undefined; // SFTP has no text channel to the user: the STATUS message says it
    const proxy = new SftpProxy({
      toClient: (b) => {
        this.bytesOut += b.length;
        relay(up, ch, b);
      },
      toUpstream: (b) => relay(ch, up, b),
      decide: (op) => {
        const v = this.policy!.file(op);
        if (v.action !== 'require_approval') return v;
        return this.settle(v, `${op.op} ${op.path}${'target' in op ? ` → ${op.target}` : ''}`, say, gone).then((d): CommandVerdict => (d.run ? { ...v, action: 'allow' } : { ...v, action: 'block', reason: d.message }));
      },
      decided: (d) => this.fileEvent(stream, d.op, d.verdict, 'sftp'),
      // the session's policy of the moment (a new version may add file rules)
      resolvePaths: () => this.policy?.filePathRules === true,
      failed: (err) => fail(err),
    });
    const fail = (err: Error): void => {
      this.log.info({ err: err.message }, 'sftp stream refused');
      ch.close();
      up.close();
    };
    const fromClient = (b: Buffer): void => {
      this.bytesIn += b.length;
      proxy.clientData(b);
      if (proxy.waiting > 64) ch.pause();
    };
    for (const b of held) fromClient(b);
    ch.on('data', fromClient);
    up.on('data', (b: Buffer) => {
      try {
        proxy.upstreamData(b);
      } catch (err) {
        fail(err as Error);
      }
    });
    ch.on('end', () => up.end());
    ch.on('close', () => up.close());
    up.on('close', () => {
      ch.end();
      ch.close();
    });
    onExit(up, (code) => {
      if (typeof code === 'number') ch.exit(code);
    });
    // a queue drained below the bound resumes reading
    const resume = setInterval(() => {
      if (proxy.waiting <= 64 && ch.isPaused()) ch.resume();
    }, 20);
    resume.unref();
    ch.on('close', () => clearInterval(resume));
    gone.addEventListener('abort', () => clearInterval(resume), { once: true });
    ch.resume();
  }

  /** Legacy `scp -O`: the stream's file and directory records are decided by path before they pass. */
  private home: Promise<string> | null = null;

  /** The login directory on the target (where relative scp paths start), asked once. */
  private homeDirectory(): Promise<string> {
    this.home ??= new Promise<string>((resolve) => {
      const asked = (err: Error | undefined, s: ClientChannel): void => {
        if (err) return resolve('/');
        let out = '';
        let tooLong = false;
        s.on('data', (b: Buffer) => {
          if (tooLong) return;
          out += b.toString('utf8');
          // a directory is a path (PATH_MAX 4096): a target that says more is not answering, and it could fill
          // the gateway's memory (a login shell printing forever held the string, and the scp, without end)
          if (out.length > 4096) {
            tooLong = true;
            out = '';
            s.close();
          }
        });
        s.stderr.resume();
        s.on('close', () => {
          const dir = out.trim();
          // unknown: relative paths are decided as if at the root, the stricter reading for rules on absolute paths
          resolve(dir.startsWith('/') ? dir : '/');
        });
      };
      try {
        this.upstream!.exec('pwd', asked);
      } catch {
        // ssh2 throws (Not connected) once the target's connection is going: this promise, rejected, was unhandled
        resolve('/');
      }
    });
    return this.home;
  }

  /**
   * Legacy scp: the sender's records (the client's for an upload, `scp -t`; the host's for a download,
   * `scp -f`) are decided by path before they reach the receiver. A record that needs approval is held:
   * the sender waits for the receiver's one-byte answer before it sends the file, so nothing flows
   * meanwhile; the client's stderr says what it waits for. Approved, the record goes on; denied (or
   * expired), both sides are answered with scp's error record (`\x01message`), as a receiver refusing
   * one file would: the sender skips it, the client prints the message, and the transfer goes on with
   * the next file (scp then exits non-zero).
   */
  private relayScp(ch: ServerChannel, up: ClientChannel, scp: Exclude<ReturnType<typeof parseScpCommand>, null | 'refused'>, stream: string, held: Buffer[], home: string, gone: AbortSignal): void {
    const upload = scp.direction === 'upload';
    let over = false;
    const refuse = (message: string): void => {
      if (over) return;
      over = true;
      // \x02: a fatal error in the scp protocol, which the scp client prints and stops on
      ch.write(Buffer.from(`\x02scp: ${message}\n`));
      ch.exit(1);
      ch.end();
      ch.close();
      up.close();
    };
    const say = (line: string): void => void ch.stderr.write(`portcullis: ${line}\n`);
    const watcher = new ScpWatcher(scp, {
      decide: (op) => {
        const v = this.policy!.file(op);
        // one waiting for approval is recorded with its outcome
        if (v.action !== 'require_approval') this.fileEvent(stream, op, v, 'scp');
        return v;
      },
    }, home);
    // the sender's bytes go through the watcher to the receiver; the receiver's answers pass as they come
    const sender = upload ? ch : up;
    const receiver = upload ? up : ch;
    const step = (st: ScpStep): void => {
      if (over) return;
      if (st.pass.length) relay(sender, receiver, st.pass);
      if (st.refused) return refuse(st.refused);
      if (st.wait) void approve(st.wait.ops);
    };
    const approve = async (ops: ScpDecided[]): Promise<void> => {
      const text = `${ops[0]!.op.op} ${ops.map((o) => o.op.path).join(' or ')}`;
      const d = await this.settle(ops[0]!.verdict, text, say, gone);
      for (const o of ops) this.fileEvent(stream, o.op, o.verdict, 'scp', d.approvalId ? { approvalId: d.approvalId, approved: d.run } : {});
      if (over || this.ended || gone.aborted) return;
      if (!d.run) {
        const why = `${text}: ${d.message ?? 'refused'}`;
        // the receiver's refusal of this one record: an upload's client skips the file; a download's
        // host skips it and its client prints why and waits for the next record
        ch.write(Buffer.from(`\x01scp: ${why}\n`));
        if (!upload) up.write(Buffer.from(`\x01${why}\n`));
      }
      step(watcher.resolve(d.run));
    };
    const fromSender = (b: Buffer): void => {
      if (upload) this.bytesIn += b.length;
      else this.bytesOut += b.length;
      step(watcher.push(b));
      // a sender that keeps writing past a held record is not speaking scp
      if (watcher.held > MAX_HELD_BYTES) refuse('data sent while a record waits for its decision');
    };
    const fromReceiver = (b: Buffer): void => {
      if (upload) this.bytesOut += b.length;
      else this.bytesIn += b.length;
      relay(receiver, sender, b);
    };
    this.track(up);
    up.stderr.on('data', (b: Buffer) => relay(up.stderr, ch.stderr, b));
    onExit(up, (code, sig, dump, desc) => {
      if (!over) sendExit(ch, '\n', code, sig, dump, desc);
    });
    up.on('close', () => {
      ch.end();
      ch.close();
    });
    ch.on('end', () => up.end());
    ch.on('close', () => up.close());
    if (upload) {
      for (const b of held) fromSender(b);
      ch.on('data', fromSender);
      up.on('data', fromReceiver);
    } else {
      for (const b of held) fromReceiver(b);
      ch.on('data', fromReceiver);
      up.on('data', fromSender);
    }
    ch.resume();
  }

  /**
   * `ssh -L` / `-W`: the destination is decided by the policy (ssh.forwarding.local) and the TARGET opens
   * the connection (a direct-tcpip channel on the upstream connection) — never the gateway, so
   * `127.0.0.1` is the target's loopback and names resolve on the target.
   */
  private directTcpip(accept: () => ServerChannel, reject: () => void, info: { srcIP: string; srcPort: number; destIP: string; destPort: number }): void {
    const stream = this.newStream('forward');
    const v = this.closing || !this.upstream ? { action: 'block' as const, rule: null, reason: 'the session is ending' } : this.policy!.forward(info.destIP, info.destPort);
    const destination = `${info.destIP}:${info.destPort}`;
    this.metrics.countDecision(v.action);
    this.emit('forward', { stream, direction: 'local', destination, host: info.destIP, port: info.destPort, action: v.action, rule: v.rule, reason: v.reason });
    if (v.action !== 'allow') {
      this.log.info({ dest: destination }, 'port forwarding refused');
      return this.refuseOpen(reject, v.reason ?? `port forwarding to ${destination} is refused`);
    }
    const release = this.takeChannelSlot(reject);
    if (!release) return;
    this.upstream!.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (err, up) => {
      if (err || this.ended) {
        up?.close();
        release();
        return this.refuseOpen(reject, `the target could not connect to ${destination} (${err?.message ?? 'session ended'})`);
      }
      const ch = accept();
      ch.once('close', release);
      this.pipeForward(stream, 'local', destination, ch, up);
    });
  }

  /** Both ways between a client channel and a target channel; a `forward` event with the bytes when it closes. */
  private pipeForward(stream: string, direction: 'local' | 'remote', destination: string, ch: ServerChannel | ClientChannel, up: ClientChannel): void {
    this.channels.add(ch as ServerChannel);
    this.track(ch);
    this.track(up);
    let toTarget = 0;
    let fromTarget = 0;
    ch.on('data', (b: Buffer) => {
      toTarget += b.length;
      this.bytesIn += b.length;
      relay(ch, up, b);
    });
    up.on('data', (b: Buffer) => {
      fromTarget += b.length;
      this.bytesOut += b.length;
      relay(up, ch, b);
    });
    ch.on('end', () => up.end());
    up.on('end', () => ch.end());
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      this.channels.delete(ch as ServerChannel);
      ch.close();
      up.close();
      this.emit('forward', { stream, direction, destination, event: 'end', bytesToTarget: toTarget, bytesFromTarget: fromTarget });
    };
    ch.on('close', close);
    up.on('close', close);
  }

  /** remote forwards the target listens on for this session: `address:port` as the client asked → the port bound */
  private readonly remoteForwards = new Map<string, number>();

  /**
   * `ssh -R`: the listener is opened on the TARGET (tcpip-forward on the upstream connection) only where
   * the policy allows the address and port (ssh.forwarding.remote); connections to it come back
   * through the gateway to the client.
   */
  private remoteForward(accept: ((port?: number) => void) | undefined, reject: (() => void) | undefined, bindAddr: string, bindPort: number): void {
    const v = this.closing || !this.upstream ? { action: 'block' as const, rule: null, reason: 'the session is ending' } : this.policy!.remoteForward(bindAddr, bindPort);
    const listen = `${bindAddr.includes(':') ? `[${bindAddr}]` : bindAddr}:${bindPort}`;
    this.metrics.countDecision(v.action);
    this.emit('forward', { stream: this.newStream('forward'), direction: 'remote', destination: listen, host: bindAddr, port: bindPort, action: v.action, rule: v.rule, reason: v.reason });
    if (v.action !== 'allow') {
      this.log.info({ listen }, 'remote forwarding refused');
      this.connectionNotes.push(v.reason ?? `remote forwarding on ${listen} is refused`);
      return reject?.();
    }
    if (!this.remoteListening) this.listenForRemote();
    this.upstream!.forwardIn(bindAddr, bindPort, (err, port) => {
      if (err || this.ended) {
        this.connectionNotes.push(`the target could not listen on ${listen} (${err?.message ?? 'session ended'})`);
        return reject?.();
      }
      this.remoteForwards.set(`${bindAddr}:${bindPort}`, port);
      accept?.(port);
    });
  }

  private cancelRemoteForward(accept: (() => void) | undefined, reject: (() => void) | undefined, bindAddr: string, bindPort: number): void {
    if (!this.remoteForwards.delete(`${bindAddr}:${bindPort}`) || !this.upstream) return reject?.();
    this.upstream.unforwardIn(bindAddr, bindPort, (err) => (err ? reject?.() : accept?.()));
  }

  private remoteListening = false;

  /** A connection to a remote forward's listener on the target: relayed to the client as forwarded-tcpip. */
  private listenForRemote(): void {
    this.remoteListening = true;
    this.upstream!.on('tcp connection', (info: { destIP: string; destPort: number; srcIP: string; srcPort: number }, acceptUp: () => ClientChannel, rejectUp: () => void) => {
      if (this.ended || !this.conn) return rejectUp();
      const release = this.takeChannelSlot(rejectUp);
      if (!release) return;
      const stream = this.newStream('forward');
      const destination = `${info.destIP}:${info.destPort}`;
      this.conn.forwardOut(info.destIP, info.destPort, info.srcIP, info.srcPort, (err, ch) => {
        if (err) {
          release();
          return rejectUp();
        }
        ch.once('close', release);
        this.emit('forward', { stream, direction: 'remote', destination, from: `${info.srcIP}:${info.srcPort}`, event: 'open' });
        this.pipeForward(stream, 'remote', destination, ch, acceptUp());
      });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  holdsEarlierDecisions(): boolean {
    return false;
  }

  /** A newer version of the session's policy (only its guardrails changed): the next commands are decided by it. */
  adoptPolicy(policy: ResolvedPolicy): void {
    if (!this.grant) return;
    this.grant = { ...this.grant, policy };
    this.policy = this.ctx.policyFor(policy);
  }

  /** The core ends the session (a new config, expiry, gateway stop): the channels are told why. */
  end(ending: SessionEnding): void {
    this.terminate(ending.reason, ending.message.replace(/^terminating connection: /, 'session ended: '));
  }

  /** NATS is gone: a session whose connection requires recording ends. */
  recordingLost(): void {
    if (this.grant?.connection.recording === 'required') this.recordingFailed('recording_unavailable', 'session recording became unavailable and this connection requires it');
  }

  private recordingFailed(reason: string, message: string): void {
    if (this.ended || this.closing) return;
    this.metrics.sessionTerminated('ssh', reason);
    this.terminate(reason, message);
  }

  /** The gateway ends the session: every open channel is told why, then the connection closes. */
  private terminate(reason: string, message: string): void {
    if (this.ended) return;
    this.log.info({ reason }, 'session terminated by the gateway');
    const open = [...this.channels];
    for (const ch of open) {
      try {
        ch.stderr.write(`\r\nportcullis: ${message}\r\n`);
        ch.exit(1);
        ch.close();
      } catch {
        // the channel went away meanwhile
      }
    }
    // The OpenSSH client drops channel output it has not written yet when the connection is cut: the
    // connection ends once the client has closed the channels (it printed the message), or soon after.
    this.closing = reason;
    const cut = setTimeout(() => this.finish(reason), 2000);
    cut.unref();
    void Promise.all(open.map((ch) => new Promise((r) => (ch.destroyed ? r(null) : ch.once('close', r))))).then(() => {
      clearTimeout(cut);
      this.finish(reason);
    });
  }

  /** terminate() is waiting for the client to close its channels: nothing else may start */
  private closing: string | null = null;

  private finish(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.aborter.abort();
    try {
      this.upstream?.end();
    } catch {
      // already closed
    }
    try {
      this.conn?.end();
    } catch {
      // already closed
    }
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
    if (this.counted) this.metrics.sessionLive('ssh', -1);
    this.bufferHold?.release();
    if (this.recorder) {
      // a session.start was recorded (even when the target then failed): its end is too
      const durationMs = Date.now() - this.startedAt;
      this.log.info({ reason, durationMs }, 'ssh session ended');
      this.recorder.emit('session.end', { reason, durationMs, bytesIn: this.bytesIn, bytesOut: this.bytesOut });
    }
    this.ctx.core.sessions.ended(this);
  }

  flushEvents(): Promise<void> {
    return this.recorder?.flush() ?? Promise.resolve();
  }
}
