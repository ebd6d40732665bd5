import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import {
  FrontendMessageType as F,
  PgFramer,
  ProtocolError,
  encodeAuthenticationCleartextPassword,
  encodeAuthenticationOk,
  encodeBackendKeyData,
  encodeErrorResponse,
  encodeParameterStatus,
  encodeReadyForQuery,
  encodeTerminate,
  BackendMessageType as B,
} from '@portcullis/protocol';
import type { ResolvedPolicy } from '../config/config-store.js';
import { AccessRefused } from '../core/access.js';
import type { BufferBudget } from '../core/buffer-budget.js';
import type { LiveSession, SessionCore, SessionEnding, SessionGrant } from '../core/session-core.types.js';
import { decisionJson, queryJson, resultJson, statementJson } from '../events/event-json.js';
import type { SessionRecorder } from '../events/event-publisher.js';
import type { GatewayMetrics } from '../http/metrics.js';
import type { Logger } from '../logger.js';
import type { SessionHooks } from '../policy/session-hooks.js';
import { sendUpstreamCancel, type CancelRegistry } from './cancel-registry.js';
import { LOG_HEAD, LaneSide, laneLengthError, openLane, type NativeLane } from './fast-lane.js';
import { LexingStateError, RelayMachine } from './relay-machine.js';
import { ChunkReader } from './chunk-reader.js';
import { StartupMachine, StartupStep, type StartupAction } from './startup-machine.js';
import type { SocketReads } from './socket-reads.js';
import { connectUpstream, UpstreamError, type UpstreamSession } from './upstream.js';

/** What a session needs from the core and its module (postgres-module.ts). */
export interface SessionContext {
  core: SessionCore;
  /** the core's, for short */
  logger: Logger;
  metrics: GatewayMetrics;
  tls: SecureContext | null;
  allowPlaintext: boolean;
  /** relay plaintext sessions that mask nothing through the native fast lane (fast-lane.ts) */
  fastLane?: boolean;
  cancels: CancelRegistry;
  /** memory for large messages in flight: the process's budget and one session's share (buffer-budget.ts) */
  buffers?: { process: BufferBudget; sessionBytes: number };
  /**
   * A CancelRequest for a key this gateway does not know: ask the pool's other gateways. Settles once
   * the gateway holding the key has delivered it upstream, or when none answered in time.
   */
  relayCancel(pid: number, secret: Buffer): Promise<void>;
  /** the SQL policy hooks of an admitted session (with approvals when the core has them) */
  hooksFor(s: SessionInfo, io: SessionIo): SessionHooks;
}

/** Who and what a session is, once the core admitted it. */
export interface SessionInfo extends SessionGrant {
  sessionId: string;
  /** Opens another upstream connection with the session's target credentials (side lookups). */
  openSide(): Promise<UpstreamSession>;
}

/** What the session's hooks may use of the session itself (held statements). */
export interface SessionIo {
  /** a whole frame to the client (the NoticeResponse naming a held statement's approval) */
  toClient(frame: Buffer): void;
  recorder: SessionRecorder | null;
  /** aborted when the session ends: a held approval is then cancelled */
  signal: AbortSignal;
  log: Logger;
}

/** While a hook holds the client direction, its bytes are still read (so a disconnect is seen) up to this much. */
const MAX_HELD_BYTES = 1024 * 1024;

const STARTUP_TIMEOUT_MS = 30_000;
/** a statement still running this long after its decision has its query and decision recorded on their own */
const HELD_START_MS = 1000;
/**
 * A message at least this large reserves its whole size from the buffer budget before the rest of it
 * is read. Smaller ones are bounded by the sockets' ordinary backpressure (a read, a write buffer).
 */
const LARGE_MESSAGE_BYTES = 256 * 1024;

type Side = 'client' | 'upstream';

/** One direction's large-message reservations (see admit()). */
interface SideHold {
  /** reserved for the message being read now */
  reading: number;
  /** frames relayed from this side when that reservation was made (one more: the message is whole) */
  at: number;
  /** reserved for messages relayed whole and not yet taken by the peer (released when it drains) */
  sent: number;
  /** a request queued at the process budget */
  waiting: (() => void) | null;
  /** stopped for want of the session's own share (read again when its peer drains) */
  blocked: boolean;
}

/** A pump's output up to this size is copied into one buffer rather than written as a corked writev. */
const COALESCE_MAX_BYTES = 64 * 1024;
/** Client bytes buffered while a hook (an approval) holds the session before reading stops. */

/**
 * One client connection: the startup phase (TLS, authentication by gateway credential, upstream
 * connect, session.start) done here, then the relay: this adapter owns both sockets, batches writes,
 * applies backpressure both ways, and feeds frames to the RelayMachine.
 */
export class ClientSession implements LiveSession {
  readonly id = randomUUID();
  readonly protocol = 'postgres';
  private readonly log: Logger;
  private client: Socket;
  private upstream: Socket | null = null;
  private clientFramer = new PgFramer({ startup: true, from: 'client' });
  private upstreamFramer: PgFramer | null = null;
  private upstreamReads: SocketReads | null = null;
  private machine: RelayMachine | null = null;
  private recorder: SessionRecorder | null = null;
  private cancelPid: number | null = null;
  private startedAt = Date.now();
  private ended = false;
  private bytesIn = 0;
  private bytesOut = 0;
  private readonly clientPause = new Set<string>();
  private readonly upstreamPause = new Set<string>();
  private clientBusy = false;
  /** bytes read from the client while clientBusy (see MAX_HELD_BYTES) */
  private heldBytes = 0;
  private readonly aborter = new AbortController();
  private upstreamBusy = false;
  private clientTls = false;
  private upstreamTls = false;
  /** The native relay of this session's sockets, when it took them (see tryFastLane). */
  private lane: NativeLane | null = null;
  /** lane.bytesRead() at the last count, and upstream bytes handed to the relay since (it counts what it writes) */
  private laneSeen = [0, 0];
  private laneHanded = 0;
  /** while the lane's log is replayed into the machine: its output was already forwarded */
  private replaying = false;
  /** inside laneMessage: the lane reads on by its return value, not by resume() */
  private inLaneMessage = false;
  /** frames relayed from each side (admit() tells a reserved message's arrival by it) */
  private readonly framed = { client: 0, upstream: 0 };
  private readonly holds: Record<Side, SideHold> = {
    client: { reading: 0, at: 0, sent: 0, waiting: null, blocked: false },
    upstream: { reading: 0, at: 0, sent: 0, waiting: null, blocked: false },
  };
  /** set once the relay is running (counted as live) */
  live = false;

  constructor(
    socket: Socket,
    private readonly ctx: SessionContext,
  ) {
    this.client = socket;
    this.log = ctx.logger.child({ session: this.id });
    socket.setNoDelay(true);
  }

  /** Runs the session to its end; never throws. */
  async run(): Promise<void> {
    this.client.on('error', (err) => this.log.debug({ err: err.message }, 'client socket error'));
    try {
      await this.startup();
    } catch (err) {
      this.ctx.metrics.sessions.inc({ outcome: 'aborted' });
      this.log.debug({ err: (err as Error).message }, 'session ended during startup');
      this.upstream?.destroy();
      this.client.destroy();
      if (this.recorder) this.endSession('startup_failed');
      else this.ended = true;
    } finally {
      // a session that ended before its relay started (a CancelRequest, a refusal) leaves the gateway's set too
      if (this.ended) this.ctx.core.sessions.ended(this);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Startup: the StartupMachine decides (startup-machine.ts), this carries its actions out

  private async startup(): Promise<void> {
    const m = new StartupMachine(
      { tls: !!this.ctx.tls, allowPlaintext: this.ctx.allowPlaintext, configured: () => this.ctx.core.currentConfig() !== null },
      this.clientFramer,
    );
    let reader: ChunkReader | null = new ChunkReader(this.client);
    let actions: StartupAction[] = [];
    let up: UpstreamSession | null = null;
    for (;;) {
      if (actions.length === 0) {
        if (!reader) throw new Error('the startup phase stalled');
        let chunk: Buffer;
        try {
          chunk = await reader.next(STARTUP_TIMEOUT_MS);
        } catch (err) {
          // psql closes when asked for a password and asks its user for one: not an error
          if (m.state !== StartupStep.Password) throw err;
          reader.detach();
          this.client.destroy();
          this.ended = true;
          return;
        }
        actions = m.received(chunk);
        continue;
      }
      const a = actions.shift()!;
      switch (a.kind) {
        case 'answer':
          this.client.write(a.byte);
          break;
        case 'upgrade-tls': {
          const early = reader!.detach(false);
          if (early.length > 0) {
            actions = m.received(early);
            break;
          }
          this.client = await this.upgradeClientTls(this.client, this.ctx.tls!);
          this.clientTls = true;
          reader = new ChunkReader(this.client);
          actions = m.tlsReady();
          break;
        }
        case 'cancel':
          reader!.detach();
          reader = null;
          this.ended = true;
          // Closed only once the cancel reached the server (as Postgres closes it once it has signalled the
          // backend): libpq's PQcancel returns on this close, and a cancel still in flight then would hit
          // the client's next statement instead of the one it meant.
          await this.handleCancel(a.pid, a.secret);
          this.client.end();
          return;
        case 'ask-password':
          this.client.write(encodeAuthenticationCleartextPassword());
          break;
        case 'verify': {
          // what the client sent after its password stays with the framer for the relay
          const rest = reader!.detach();
          reader = null;
          this.clientFramer.push(rest);
          actions = await this.verify(m, a);
          break;
        }
        case 'connect':
          up = await this.connectUpstream(m, a.settings);
          if (up) actions = m.upstreamReady(up.parameters);
          else actions = this.pendingRefusal;
          break;
        case 'greet':
          if (this.ended || this.client.destroyed) {
            up!.socket.destroy();
            this.endSession('client_gone');
            return;
          }
          this.goLive(up!, m.startupParams.user);
          return;
        case 'refuse':
          up?.socket.destroy();
          reader?.detach();
          if (a.protocolError) {
            this.ctx.metrics.errors.inc({ kind: 'protocol' });
            this.ctx.metrics.sessions.inc({ outcome: 'protocol_error' });
            this.log.info({ err: a.message }, 'protocol error during startup');
          } else {
            this.ctx.metrics.sessions.inc({ outcome: a.reason });
            this.log.info({ reason: a.reason, msg: a.message }, 'session refused');
          }
          this.fatal(a.code, a.message, a.detail);
          if (this.recorder) this.endSession(a.reason);
          else this.ended = true;
          return;
        case 'close':
          reader?.detach();
          this.ctx.metrics.errors.inc({ kind: 'protocol' });
          this.ctx.metrics.sessions.inc({ outcome: 'protocol_error' });
          this.log.info({ err: a.reason }, 'protocol error during startup');
          this.client.destroy();
          this.ended = true;
          return;
      }
    }
  }

  /** The refusal an upstream step produced (connectUpstream returned null). */
  private pendingRefusal: StartupAction[] = [];

  private upgradeClientTls(socket: Socket, context: SecureContext): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const s = new TLSSocket(socket, { isServer: true, secureContext: context });
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error('TLS handshake timed out'));
      }, STARTUP_TIMEOUT_MS);
      s.once('secure', () => {
        clearTimeout(t);
        s.off('error', onErr);
        s.on('error', (err) => this.log.debug({ err: err.message }, 'client TLS socket error'));
        resolve(s);
      });
      const onErr = (err: Error): void => {
        clearTimeout(t);
        reject(err);
      };
      s.once('error', onErr);
    });
  }

  private async handleCancel(pid: number, secret: Buffer): Promise<void> {
    const target = this.ctx.cancels.lookup(pid, secret);
    if (target) {
      this.log.info({ pid }, 'cancel request forwarded upstream');
      await sendUpstreamCancel(target);
    } else {
      await this.ctx.relayCancel(pid, secret);
    }
  }

  /** The core admits the credential (or refuses it). */
  private async verify(m: StartupMachine, a: { token: string; connection: string; user: string | null }): Promise<StartupAction[]> {
    let grant: SessionGrant;
    try {
      grant = await this.ctx.core.authenticate({ protocol: 'postgres', token: a.token, connection: a.connection, source: this.client.remoteAddress ?? null, claimedUser: a.user });
    } catch (err) {
      if (err instanceof AccessRefused) return m.refused(err.reason, err.message);
      throw err;
    }
    const conn = grant.connection;
    this.info = { ...grant, sessionId: this.id, openSide: () => connectUpstream(conn, { application_name: 'portcullis-gateway' }) };
    return m.verified(grant.policy?.document.refusedSettings);
  }

  /** session.start, then the target; null when refused (the refusal is in pendingRefusal). */
  private async connectUpstream(m: StartupMachine, settings: Record<string, string>): Promise<UpstreamSession | null> {
    const info = this.info!;
    const conn = info.connection;
    const params = m.startupParams;
    const start = { clientAddr: this.client.remoteAddress ?? null, user: params.user ?? null, database: conn.name, applicationName: params.application_name ?? null, tls: this.clientTls };
    try {
      this.recorder = await this.ctx.core.startRecording(this.id, info, start, (err) => this.recordingFailed(err), this.log);
    } catch (err) {
      if (!(err instanceof AccessRefused)) throw err;
      this.pendingRefusal = m.refused(err.reason, err.message);
      return null;
    }
    const t0 = process.hrtime.bigint();
    try {
      const up = await connectUpstream(conn, settings);
      this.ctx.metrics.upstreamConnect.observe(Number(process.hrtime.bigint() - t0) / 1e9);
      return up;
    } catch (err) {
      this.ctx.metrics.errors.inc({ kind: 'upstream' });
      this.log.warn({ err: (err as Error).message, connection: conn.name }, 'upstream connection failed');
      const e = err instanceof UpstreamError ? err : null;
      this.pendingRefusal = m.upstreamFailed(conn.name, { sqlState: e?.sqlState ?? null, serverMessage: e?.serverMessage ?? null });
      return null;
    }
  }

  /** Admitted and connected: greet the client as Postgres would (with the gateway's own cancel key) and relay. */
  private goLive(up: UpstreamSession, startupUser: string | undefined): void {
    const info = this.info!;
    const conn = info.connection;
    this.upstream = up.socket;
    this.upstreamTls = up.tls;
    this.upstreamFramer = up.framer;
    this.upstreamReads = up.reads;
    if (up.backendKey) {
      const key = this.ctx.cancels.register({ host: conn.host, port: conn.port, pid: up.backendKey.pid, secret: up.backendKey.secret });
      this.cancelPid = key.pid;
      this.clientKey = key;
    }
    const clientUser = startupUser ?? info.claims.sub;
    const hooks = this.ctx.hooksFor(info, { toClient: (b) => this.toClient(b), recorder: this.recorder, signal: this.aborter.signal, log: this.log });
    this.hooks = hooks;
    this.machine = new RelayMachine(
      hooks,
      { toClient: (b) => this.toClient(b), toUpstream: (b) => this.toUpstream(b) },
      {
        query: (d, at) => this.recorder?.emitJson('query', queryJson(d), at),
        decision: (d, at) => this.recorder?.emitJson('decision', decisionJson(d), at),
        result: (d) => this.recorder?.emitJson('result', resultJson(d)),
        statement: (q, d, r, at) => this.recorder?.emitJson('statement', statementJson(q, d, r), at),
        holding: () => this.watchHeldStarts(),
      },
      {
        decision: (a) => this.ctx.metrics.countDecision(a),
        masked: (n) => this.ctx.metrics.maskedValues.inc(n),
      },
      clientUser,
    );
    if (up.backendKey && this.clientKey) this.machine.setBackendPids(up.backendKey.pid, this.clientKey.pid);
    // Greet the client as Postgres would, with the gateway's own cancel key.
    this.client.cork();
    this.client.write(encodeAuthenticationOk());
    for (const [k, v] of up.parameters) this.client.write(encodeParameterStatus(k, k === 'session_authorization' ? clientUser : v));
    if (this.clientKey) this.client.write(encodeBackendKeyData(this.clientKey.pid, this.clientKey.secret));
    this.client.write(encodeReadyForQuery('I'));
    this.client.uncork();
    this.live = true;
    this.ctx.metrics.sessions.inc({ outcome: 'ok' });
    this.ctx.metrics.liveSessions.inc();
    this.log.info({ connection: conn.name, subject: info.claims.sub, tls: this.clientTls, upstreamTls: up.tls }, 'session started');
    this.startRelay();
    // answers to a config that arrived while it was connecting upstream; its grant's end is watched
    this.ctx.core.sessions.live(this);
  }

  /** armed while the machine holds statements' starts (see watchHeldStarts) */
  private heldStartsTimer: NodeJS.Timeout | null = null;

  private info: SessionInfo | null = null;
  private clientKey: { pid: number; secret: Buffer } | null = null;
  private hooks: SessionHooks | null = null;

  // -------------------------------------------------------------------------------------------
  // Relay

  private startRelay(): void {
    const client = this.client;
    const upstream = this.upstream!;
    if (this.tryFastLane(client, upstream)) return;
    client.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      this.ctx.metrics.countBytes('in', chunk.length);
      this.clientFramer.push(chunk);
      if (this.clientBusy && (this.heldBytes += chunk.length) > MAX_HELD_BYTES) this.pause(this.clientPause, client, 'busy');
      this.pumpClient();
      this.admit('client');
    });
    if (this.upstreamReads) {
      // The chunk's memory is reused by the next read unless something still holds it.
      this.upstreamReads.setSink((chunk) => {
        this.upstreamFramer!.push(chunk);
        this.pumpUpstream();
        this.admit('upstream');
        // A TLS client's writes never hold it (writeClient gives them a copy): a TLS write completes
        // asynchronously, so writableLength is non-zero after nearly every one, and keeping the read
        // buffer for it meant a fresh 64 KiB buffer per read (~200 MB/s of garbage at 3k tx/s).
        return this.upstreamFramer!.buffered() > 0 || this.upstreamBusy || (!this.clientTls && this.client.writableLength > 0);
      });
    } else {
      upstream.on('data', (chunk: Buffer) => {
        this.upstreamFramer!.push(chunk);
        this.pumpUpstream();
        this.admit('upstream');
      });
    }
    client.on('close', () => this.endSession('client_closed'));
    client.on('end', () => this.endSession('client_closed'));
    upstream.on('close', () => this.upstreamClosed());
    upstream.on('error', (err) => this.log.debug({ err: err.message }, 'upstream socket error'));
    client.on('drain', () => {
      this.unpause(this.upstreamPause, upstream, 'drain');
      this.admit('upstream');
    });
    upstream.on('drain', () => {
      this.unpause(this.clientPause, client, 'drain');
      this.admit('client');
    });
    client.resume();
    upstream.resume();
    // Anything already framed (a pipelining client, a server notice after ReadyForQuery).
    this.pumpClient();
    this.pumpUpstream();
  }

  /*
   * Output of the pump in progress, one run per socket. Frames relayed raw are views into the chunk
   * they arrived in, so consecutive ones lie next to each other in memory: they are merged into one
   * view, and a pump usually ends in a single write() per socket. Anything else (an encoded frame, a
   * masked row) starts a new run; the pump's runs then go out as one copied buffer (or, when large,
   * corked) — one syscall either way, without the per-chunk cost of a corked writev.
   */
  private outClient: Buffer | null = null;
  private outUpstream: Buffer | null = null;
  private readonly partsClient: Buffer[] = [];
  private readonly partsUpstream: Buffer[] = [];
  private pumping = 0;

  // -------------------------------------------------------------------------------------------
  // Fast lane: the native module relays the sockets and hands the machine what it must see

  /**
   * Hands both sockets to the native fast lane when nothing in this session needs the JavaScript
   * relay on every message: both sides plaintext, a policy that masks nothing and keeps no result
   * rows (recording.results), nothing buffered.
   * The machine still sees every Query, Parse, error and unusual message (the lane hands them over
   * and waits), and replays what the lane forwarded by itself, so decisions and events are the same.
   */
  private tryFastLane(client: Socket, upstream: Socket): boolean {
    if (!this.ctx.fastLane || this.clientTls || this.upstreamTls || this.hooks?.masksResults !== false || this.hooks.recordResults) return false;
    if (this.clientFramer.buffered() > 0 || this.upstreamFramer!.buffered() > 0) return false;
    const caps = { client: this.clientFramer.lengthCaps(), upstream: this.upstreamFramer!.lengthCaps() };
    let lane: NativeLane | string;
    try {
      lane = openLane(client, upstream, caps, {
        // a frame in the lane's reused buffer is copied out into Node's pooled memory
        onMessage: (side, buf, logBytes, length) => this.laneMessage(side, length < 0 ? buf : Buffer.from(buf.subarray(0, length)), logBytes),
        onLog: (n) => this.replayLane(n),
        onClose: (side, errno, type, length) => this.laneClosed(side, errno, type, length),
      });
    } catch (err) {
      lane = (err as Error).message;
    }
    if (typeof lane === 'string') {
      this.log.debug({ reason: lane }, 'fast lane not used for this session');
      return false;
    }
    this.lane = lane;
    this.ctx.metrics.fastLaneSessions.inc();
    client.on('close', () => this.endSession('client_closed'));
    upstream.on('close', () => this.upstreamClosed());
    upstream.on('error', (err) => this.log.debug({ err: err.message }, 'upstream socket error'));
    return true;
  }

  /**
   * A message the lane does not forward by itself: through the framer and machine as usual. True
   * when it is dealt with; else (a hook answers later) the pump resumes the lane when it settles.
   */
  private laneMessage(side: LaneSide, frame: Buffer, logBytes: number): boolean {
    if (logBytes > 0) this.replayLane(logBytes);
    if (this.ended) return false;
    this.inLaneMessage = true;
    try {
      if (side === LaneSide.Client) {
        this.clientFramer.push(frame);
        this.pumpClient();
        return !this.clientBusy && !this.ended;
      }
      this.laneHanded += frame.length;
      this.upstreamFramer!.push(frame);
      this.pumpUpstream();
      return !this.upstreamBusy && !this.ended;
    } finally {
      this.inLaneMessage = false;
    }
  }

  /** Replays the lane's log (what it forwarded by itself) into the machine, with its output muted. */
  private replayLane(n: number): void {
    const lane = this.lane;
    const m = this.machine;
    if (!lane || !m) return;
    const log = n > 0 ? lane.log() : null;
    if (log) {
      this.replaying = true;
      try {
        for (let o = 0; o < n; ) {
          const kind = log[o];
          const side = log[o + 1];
          const len = log.readUInt32LE(o + 2);
          const at = log.readDoubleLE(o + 6);
          const start = o + LOG_HEAD;
          o = start + len;
          if (side === LaneSide.Upstream && kind === B.DataRow) {
            m.replayedRows(log.readUInt32LE(start));
            continue;
          }
          const payload = log.subarray(start, o);
          m.replayed(side === LaneSide.Client ? 'client' : 'upstream', { type: kind, payload, frame: payload }, at);
        }
      } catch (err) {
        this.replaying = false;
        this.relayFailed(err, 'upstream');
        return;
      } finally {
        this.replaying = false;
      }
    }
    const cin = lane.bytesRead(LaneSide.Client);
    const uin = lane.bytesRead(LaneSide.Upstream);
    const dIn = cin - this.laneSeen[0];
    const dOut = uin - this.laneSeen[1] - this.laneHanded;
    this.laneSeen[0] = cin;
    this.laneSeen[1] = uin;
    this.laneHanded = 0;
    this.bytesIn += dIn;
    this.bytesOut += dOut;
    if (dIn > 0) this.ctx.metrics.countBytes('in', dIn);
    if (dOut > 0) this.ctx.metrics.countBytes('out', dOut);
  }

  private laneClosed(side: LaneSide, errno: number, type: number, length: number): void {
    if (this.ended || !this.lane) return;
    this.replayLane(this.lane.take());
    const who = side === LaneSide.Client ? 'client' : 'upstream';
    if (errno === -1) {
      this.relayFailed(laneLengthError(type, length, (who === 'client' ? this.clientFramer : this.upstreamFramer!).lengthCaps()), who);
      return;
    }
    if (errno > 0) this.log.debug({ side: who, errno }, 'socket error in the fast lane');
    if (side === LaneSide.Client) this.endSession('client_closed');
    else this.upstreamClosed();
  }

  private toClient(b: Buffer): void {
    if (this.replaying) return;
    this.bytesOut += b.length;
    if (this.pumping === 0) {
      this.writeClient(b);
      return;
    }
    const run = this.outClient;
    if (run === null) this.outClient = b;
    else if (run.buffer === b.buffer && run.byteOffset + run.length === b.byteOffset) this.outClient = Buffer.from(run.buffer, run.byteOffset, run.length + b.length);
    else {
      this.partsClient.push(run);
      this.outClient = b;
    }
  }

  private toUpstream(b: Buffer): void {
    if (this.replaying) return;
    if (this.pumping === 0) {
      this.writeUpstream(b);
      return;
    }
    const run = this.outUpstream;
    if (run === null) this.outUpstream = b;
    else if (run.buffer === b.buffer && run.byteOffset + run.length === b.byteOffset) this.outUpstream = Buffer.from(run.buffer, run.byteOffset, run.length + b.length);
    else {
      this.partsUpstream.push(run);
      this.outUpstream = b;
    }
  }

  private writeClient(b: Buffer): void {
    this.ctx.metrics.countBytes('out', b.length);
    if (this.lane) {
      this.lane.write(LaneSide.Client, b);
      return;
    }
    // TLS: the cleartext gets its own copy (see the upstream sink in startRelay) — a copy of what is
    // written, usually a few hundred bytes and at most one read, instead of a new 64 KiB read buffer
    // per read. (A buffer writeParts has just concatenated is copied once more here.)
    if (!this.client.write(this.clientTls ? Buffer.from(b) : b) && !this.upstreamPause.has('drain')) this.pause(this.upstreamPause, this.upstream!, 'drain');
  }

  private writeUpstream(b: Buffer): void {
    if (this.lane) {
      this.lane.write(LaneSide.Upstream, b);
      return;
    }
    if (!this.upstream!.write(b) && !this.clientPause.has('drain')) this.pause(this.clientPause, this.client, 'drain');
  }

  /** Writes what the pump gathered (before anything else is written or a socket is ended). */
  private flushOut(): void {
    const u = this.outUpstream;
    const c = this.outClient;
    this.outUpstream = null;
    this.outClient = null;
    if (u) {
      if (this.partsUpstream.length === 0) this.writeUpstream(u);
      else this.writeParts(this.partsUpstream, u, this.upstream!, (b) => this.writeUpstream(b));
    }
    if (c) {
      if (this.partsClient.length === 0) this.writeClient(c);
      else this.writeParts(this.partsClient, c, this.client, (b) => this.writeClient(b));
    }
  }

  private writeParts(parts: Buffer[], last: Buffer, socket: Socket, write: (b: Buffer) => void): void {
    parts.push(last);
    let total = 0;
    for (const p of parts) total += p.length;
    if (total <= COALESCE_MAX_BYTES) write(Buffer.concat(parts, total));
    else {
      socket.cork();
      for (const p of parts) write(p);
      if (!socket.destroyed) socket.uncork();
    }
    parts.length = 0;
  }

  private pause(set: Set<string>, s: Socket, why: string): void {
    set.add(why);
    s.pause();
  }

  private unpause(set: Set<string>, s: Socket, why: string): void {
    if (!set.delete(why)) return;
    if (set.size === 0 && !this.ended) s.resume();
  }

  /**
   * Memory for large messages (buffer-budget.ts), after each read and drain: a message relayed whole
   * is held until the peer's socket has taken it; a large message still arriving is reserved whole
   * from the session's share and the process budget before its side is read on, and that side stops
   * being read until both can hold it. Never dropped, only delayed. A message larger than a
   * session's whole share could never be relayed: the session ends (54000).
   */
  private admit(side: Side): void {
    const budget = this.ctx.buffers;
    if (!budget || this.ended || this.lane) return;
    const h = this.holds[side];
    const source = side === 'client' ? this.client : this.upstream!;
    const peer = side === 'client' ? this.upstream! : this.client;
    const paused = side === 'client' ? this.clientPause : this.upstreamPause;
    if (h.reading > 0 && this.framed[side] !== h.at) {
      h.sent += h.reading;
      h.reading = 0;
    }
    if (h.sent > 0 && peer.writableLength === 0) {
      budget.process.release(h.sent);
      h.sent = 0;
    }
    const framer = side === 'client' ? this.clientFramer : this.upstreamFramer!;
    const want = framer.incompleteSize;
    if (h.blocked && want < LARGE_MESSAGE_BYTES) {
      h.blocked = false;
      this.unpause(paused, source, 'budget');
    }
    if (want < LARGE_MESSAGE_BYTES || h.reading > 0 || h.waiting) return;
    if (want > budget.sessionBytes) {
      this.terminate('54000', `a message of ${want} bytes exceeds the gateway's limit of ${budget.sessionBytes} bytes per session`, 'message_too_large');
      return;
    }
    const other = this.holds[side === 'client' ? 'upstream' : 'client'];
    if (h.sent + other.reading + other.sent + want > budget.sessionBytes) {
      // the session's own earlier messages must reach their peers first
      if (!h.blocked) {
        h.blocked = true;
        this.ctx.metrics.bufferWaits.inc({ budget: 'session' });
        this.pause(paused, source, 'budget');
      }
      return;
    }
    if (h.blocked) {
      h.blocked = false;
      this.unpause(paused, source, 'budget');
    }
    h.at = this.framed[side];
    const grant = (): void => {
      h.waiting = null;
      h.reading = want;
      this.unpause(paused, source, 'budget');
    };
    if (budget.process.reserve(want, () => grant())) {
      h.reading = want;
      return;
    }
    h.waiting = grant;
    this.ctx.metrics.bufferWaits.inc({ budget: 'process' });
    this.pause(paused, source, 'budget');
  }

  /** Gives back what the session held of the buffer budget (it ended). */
  private releaseBuffers(): void {
    const budget = this.ctx.buffers;
    if (!budget) return;
    for (const h of Object.values(this.holds)) {
      if (h.waiting) budget.process.cancel(h.waiting);
      budget.process.release(h.reading + h.sent);
      h.waiting = null;
      h.reading = h.sent = 0;
    }
  }

  private pumpClient(): void {
    if (this.clientBusy || this.ended || !this.machine) return;
    const upstream = this.upstream!;
    this.pumping++;
    try {
      for (;;) {
        const f = this.clientFramer.next();
        if (!f) break;
        this.framed.client++;
        if (f.type === F.Terminate) {
          this.flushOut();
          if (this.lane) this.lane.write(LaneSide.Upstream, encodeTerminate());
          else upstream.write(encodeTerminate());
          this.endSession('client_terminated');
          return;
        }
        const r = this.machine.fromClient(f);
        if (r) {
          // Not paused: a client that disconnects while a hook holds (an approval) must be noticed.
          this.clientBusy = true;
          this.heldBytes = 0;
          r.then(
            () => {
              this.clientBusy = false;
              this.unpause(this.clientPause, this.client, 'busy');
              this.pumpClient();
            },
            (err: unknown) => this.relayFailed(err, 'client'),
          );
          break;
        }
      }
    } catch (err) {
      this.relayFailed(err, 'client');
    } finally {
      this.pumping--;
      this.flushOut();
      if (this.lane && !this.inLaneMessage && !this.clientBusy && !this.ended) this.lane.resume(LaneSide.Client);
    }
  }

  private pumpUpstream(): void {
    if (this.upstreamBusy || this.ended || !this.machine) return;
    const upstream = this.upstream!;
    this.pumping++;
    try {
      for (;;) {
        const f = this.upstreamFramer!.next();
        if (!f) break;
        this.framed.upstream++;
        const r = this.machine.fromUpstream(f);
        if (r) {
          this.upstreamBusy = true;
          this.pause(this.upstreamPause, upstream, 'busy');
          r.then(
            () => {
              this.upstreamBusy = false;
              this.unpause(this.upstreamPause, upstream, 'busy');
              this.pumpUpstream();
            },
            (err: unknown) => this.relayFailed(err, 'upstream'),
          );
          break;
        }
      }
    } catch (err) {
      this.relayFailed(err, 'upstream');
    } finally {
      this.pumping--;
      this.flushOut();
      if (this.lane && !this.inLaneMessage && !this.upstreamBusy && !this.ended) this.lane.resume(LaneSide.Upstream);
    }
  }

  private relayFailed(err: unknown, side: 'client' | 'upstream'): void {
    if (this.ended) return;
    if (err instanceof LexingStateError) {
      this.terminate(err.sqlState, err.message, 'lexing_state', err.detail);
      return;
    }
    if (err instanceof ProtocolError) {
      this.ctx.metrics.errors.inc({ kind: 'protocol' });
      this.log.info({ side, err: err.message }, 'protocol error; session closed');
      if (side === 'client') this.fatal('08P01', `protocol violation: ${err.message}`);
      else this.fatal('08006', 'the target sent an invalid message; the session was closed');
      this.endSession(`protocol_error_${side}`);
      return;
    }
    this.ctx.metrics.errors.inc({ kind: 'internal' });
    this.log.error({ side, err: (err as Error)?.stack ?? String(err) }, 'internal error in relay');
    this.fatal('XX000', 'internal error in the gateway; the session was closed');
    this.endSession('internal_error');
  }

  private upstreamClosed(): void {
    if (this.ended) return;
    // Whatever the server sent last (a FATAL) is already relayed; let the client read it.
    this.endSession('upstream_closed', true);
  }

  private recordingFailed(err: Error): void {
    if (this.ended) return;
    this.ctx.metrics.errors.inc({ kind: 'recording' });
    this.log.warn({ err: err.message }, 'recording failed on a connection that requires it; ending the session');
    this.fatal('57P03', 'session recording is unavailable and this connection requires it; the session was ended');
    this.endSession('recording_failed', false, false);
  }

  private fatal(code: string, message: string, detail?: string): void {
    if (this.pumping > 0) this.flushOut();
    const frame = encodeErrorResponse({ severity: 'FATAL', code, message, ...(detail ? { detail } : {}) });
    if (this.lane) {
      // written before endSession closes the lane (which gives the queue one more try)
      this.lane.write(LaneSide.Client, frame);
      return;
    }
    if (this.client.destroyed || !this.client.writable) return;
    try {
      this.client.end(frame);
    } catch {
      this.client.destroy();
    }
  }

  /**
   * A statement whose query and decision travel with its result must not stay unrecorded while it
   * runs long: a second after it was decided they are recorded on their own. One timer per session,
   * armed only while something is held (at most once a second under a steady load).
   */
  private watchHeldStarts(): void {
    if (this.heldStartsTimer || this.ended) return;
    this.heldStartsTimer = setTimeout(() => {
      this.heldStartsTimer = null;
      if (this.ended || !this.machine) return;
      if (this.machine.releaseStarts(Date.now() - HELD_START_MS) > 0) this.watchHeldStarts();
    }, HELD_START_MS);
    this.heldStartsTimer.unref();
  }

  /** Ends the session once: closes both sides, unregisters the cancel key, records session.end. */
  endSession(reason: string, graceful = false, record = true): void {
    if (this.ended) return;
    if (this.pumping > 0) this.flushOut();
    // what the lane forwarded since its last log still counts (result events, statements, bytes)
    if (this.lane) this.replayLane(this.lane.take());
    this.ended = true;
    this.releaseBuffers();
    this.aborter.abort();
    if (this.heldStartsTimer) clearTimeout(this.heldStartsTimer);
    // statements still running: their query and decision are recorded before the end
    this.machine?.releaseStarts(Infinity);
    if (this.cancelPid !== null) this.ctx.cancels.unregister(this.cancelPid);
    try {
      this.hooks?.close?.();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'hooks close failed');
    }
    if (this.lane) {
      const lane = this.lane;
      this.lane = null;
      if (!graceful && this.upstream && !this.upstream.destroyed) lane.write(LaneSide.Upstream, encodeTerminate());
      lane.close();
    }
    if (this.upstream && !this.upstream.destroyed) {
      if (graceful) this.upstream.destroy();
      else this.upstream.end(encodeTerminate());
      setTimeout(() => this.upstream?.destroy(), 1000).unref();
    }
    if (!this.client.destroyed) {
      this.client.end();
      setTimeout(() => this.client.destroy(), 1000).unref();
    }
    if (this.live) this.ctx.metrics.liveSessions.dec();
    const durationMs = Date.now() - this.startedAt;
    this.log.info({ reason, durationMs, statements: this.machine?.statements ?? 0 }, 'session ended');
    if (this.recorder && record) {
      this.recorder.emit('session.end', {
        reason,
        durationMs,
        statements: this.machine?.statements ?? 0,
        bytesIn: this.bytesIn,
        bytesOut: this.bytesOut,
      });
    }
    this.ctx.core.sessions.ended(this);
  }

  /**
   * The gateway lost its event stream. A session whose connection requires recording ends now, not when
   * its next event times out: nothing may run unrecorded in between (fail closed).
   */
  recordingLost(): void {
    if (this.ended || this.recorder?.mode !== 'required') return;
    this.recordingFailed(new Error('disconnected from NATS'));
  }

  get grant(): SessionGrant | null {
    return this.info;
  }

  /** Named prepared statements were allowed once and run later without a new decision. */
  holdsEarlierDecisions(): boolean {
    return this.machine?.preparedStatements ?? false;
  }

  /** The core moved the session to a newer version of its policy: the hooks read it at each statement. */
  adoptPolicy(policy: ResolvedPolicy): void {
    if (this.info) this.info.policy = policy;
  }

  /** The core ends the session (config reaction, expiry, gateway shutdown): a FATAL, then session.end. */
  end(ending: SessionEnding): void {
    if (this.ended) return;
    this.fatal(ending.code, ending.message);
    this.endSession(ending.reason);
  }

  /** The gateway ends a live session on its own: the client gets a FATAL, session.end says why. */
  private terminate(code: string, message: string, reason: string, detail?: string): void {
    this.log.info({ reason }, 'session terminated by the gateway');
    this.ctx.metrics.sessionsTerminated.inc({ reason });
    this.fatal(code, message, detail);
    this.endSession(reason);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Waits for the session's events to be acked. */
  flushEvents(): Promise<void> {
    return this.recorder?.flush() ?? Promise.resolve();
  }
}
