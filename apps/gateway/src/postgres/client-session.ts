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
} from '@portcullis/protocol';
import type { ResolvedPolicy } from '../config/config-store.js';
import { AccessRefused } from '../core/access.js';
import type { BufferBudget } from '../core/buffer-budget.js';
import type { LiveSession, SessionCore, SessionEnding, SessionGrant } from '../core/session-core.types.js';
import { decisionJson, queryJson, resultJson, statementJson } from '../events/event-json.js';
import type { SessionRecorder } from '../events/event-publisher.js';
import type { GatewayMetrics } from '../http/metrics.js';
import type { Logger } from '../logger.js';
import type { SessionHooks } from './session-hooks.js';
import { sendUpstreamCancel, type CancelRegistry } from './cancel-registry.js';
import { JsRelay } from './js-relay.js';
import { LaneRelay } from './lane-relay.js';
import type { RelayEnds, RelayHost, RelaySide, RelayTransport } from './relay-transport.js';
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

const STARTUP_TIMEOUT_MS = 30_000;
/** a statement still running this long after its decision has its query and decision recorded on their own */
const HELD_START_MS = 1000;
/** A pump's output up to this size is copied into one buffer rather than written as a corked writev. */
const COALESCE_MAX_BYTES = 64 * 1024;
/** 57P01 admin_shutdown: how a session the core ends is told (what pg_terminate_backend gives, which pools and drivers know to reconnect after) */
const ADMIN_SHUTDOWN = '57P01';

/**
 * One client connection: the startup phase (StartupMachine decides, this carries it out: TLS, the
 * core's admission, session.start, the upstream connect), then the relay: frames from both sides
 * through the RelayMachine, its output coalesced into few writes, over one RelayTransport — the
 * JavaScript relay (js-relay.ts) or the native fast lane (lane-relay.ts).
 */
export class ClientSession implements LiveSession, RelayHost {
  readonly id = randomUUID();
  readonly protocol = 'postgres';
  /** @internal */
  readonly log: Logger;
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
  /** @internal */
  bytesIn = 0;
  /** @internal */
  bytesOut = 0;
  /** @internal */
  readonly clientPause = new Set<string>();
  /** @internal */
  readonly upstreamPause = new Set<string>();
  /** @internal */
  clientBusy = false;
  /** bytes read from the client while clientBusy (see MAX_HELD_BYTES) */
  heldBytes = 0;
  private readonly aborter = new AbortController();
  /** @internal */
  upstreamBusy = false;
  private clientTls = false;
  private upstreamTls = false;
  /** how the relay's bytes move: the JavaScript relay or the native fast lane (set when the session goes live) */
  private transport: RelayTransport | null = null;
  /** @internal while the lane's log is replayed into the machine: its output was already forwarded */
  replaying = false;
  /** @internal frames relayed from each side (the JavaScript relay's budget tells a reserved message's arrival by it) */
  readonly framed = { client: 0, upstream: 0 };
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
      this.ctx.metrics.sessionOutcome('postgres', 'aborted');
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
            this.ctx.metrics.sessionOutcome('postgres', 'protocol_error');
            this.log.info({ err: a.message }, 'protocol error during startup');
          } else {
            this.ctx.metrics.sessionOutcome('postgres', a.reason);
            this.log.info({ reason: a.reason, msg: a.message }, 'session refused');
          }
          this.fatal(a.code, a.message, a.detail);
          if (this.recorder) this.endSession(a.reason);
          else this.ended = true;
          return;
        case 'close':
          reader?.detach();
          this.ctx.metrics.errors.inc({ kind: 'protocol' });
          this.ctx.metrics.sessionOutcome('postgres', 'protocol_error');
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
    this.ctx.metrics.sessionOutcome('postgres', 'ok');
    this.ctx.metrics.sessionLive('postgres', 1);
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
    const ends: RelayEnds = {
      client: this.client, upstream: this.upstream!, clientTls: this.clientTls, upstreamTls: this.upstreamTls,
      clientFramer: this.clientFramer, upstreamFramer: this.upstreamFramer!, upstreamReads: this.upstreamReads, machine: this.machine!,
    };
    const laneEligible = !!this.ctx.fastLane && this.hooks?.masksResults === false && !this.hooks.recordResults && !this.hooks.measuresWrites;
    this.transport = LaneRelay.open(this, ends, laneEligible) ?? new JsRelay(this, ends);
    this.transport.start();
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
    this.transport!.write('client', b);
  }

  private writeUpstream(b: Buffer): void {
    this.transport!.write('upstream', b);
  }

  /** Writes what the pump gathered (before anything else is written or a socket is ended). */
  private flushOut(): void {
    const u = this.outUpstream;
    const c = this.outClient;
    this.outUpstream = null;
    this.outClient = null;
    if (u) {
      if (this.partsUpstream.length === 0) this.writeUpstream(u);
      else this.writeParts(this.partsUpstream, u, 'upstream');
    }
    if (c) {
      if (this.partsClient.length === 0) this.writeClient(c);
      else this.writeParts(this.partsClient, c, 'client');
    }
  }

  private writeParts(parts: Buffer[], last: Buffer, side: RelaySide): void {
    parts.push(last);
    let total = 0;
    for (const p of parts) total += p.length;
    if (total <= COALESCE_MAX_BYTES) {
      if (side === 'client') this.writeClient(Buffer.concat(parts, total));
      else this.writeUpstream(Buffer.concat(parts, total));
    } else {
      if (side === 'client') this.ctx.metrics.countBytes('out', total);
      this.transport!.writeMany(side, parts);
    }
    parts.length = 0;
  }

  /** @internal */
  pause(set: Set<string>, s: Socket, why: string): void {
    set.add(why);
    s.pause();
  }

  /** @internal */
  unpause(set: Set<string>, s: Socket, why: string): void {
    if (!set.delete(why)) return;
    if (set.size === 0 && !this.ended) s.resume();
  }

  /** @internal */
  pumpClient(): void {
    if (this.clientBusy || this.ended || !this.machine) return;
    this.pumping++;
    try {
      for (;;) {
        const f = this.clientFramer.next();
        if (!f) break;
        this.framed.client++;
        if (f.type === F.Terminate) {
          this.flushOut();
          this.transport!.terminateUpstream(encodeTerminate());
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
      this.transport?.pumped('client');
    }
  }

  /** @internal */
  pumpUpstream(): void {
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
      this.transport?.pumped('upstream');
    }
  }

  /** @internal */
  relayFailed(err: unknown, side: RelaySide): void {
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

  /** @internal */
  upstreamClosed(): void {
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
    if (this.transport?.fatal(frame)) return;
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
    this.transport?.ending();
    this.ended = true;
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
    this.transport?.close(graceful);
    if (this.upstream && !this.upstream.destroyed) {
      if (graceful) this.upstream.destroy();
      else this.upstream.end(encodeTerminate());
      setTimeout(() => this.upstream?.destroy(), 1000).unref();
    }
    if (!this.client.destroyed) {
      this.client.end();
      setTimeout(() => this.client.destroy(), 1000).unref();
    }
    if (this.live) this.ctx.metrics.sessionLive('postgres', -1);
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
    this.fatal(ADMIN_SHUTDOWN, ending.message);
    this.endSession(ending.reason);
  }

  /** The gateway ends a live session on its own: the client gets a FATAL, session.end says why. */
  /** @internal */
  terminate(code: string, message: string, reason: string, detail?: string): void {
    this.log.info({ reason }, 'session terminated by the gateway');
    this.ctx.metrics.sessionTerminated('postgres', reason);
    this.fatal(code, message, detail);
    this.endSession(reason);
  }

  /** @internal the core's metrics */
  get metrics(): GatewayMetrics {
    return this.ctx.metrics;
  }

  /** @internal memory for large messages in flight */
  get buffers(): SessionContext['buffers'] {
    return this.ctx.buffers;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Waits for the session's events to be acked. */
  flushEvents(): Promise<void> {
    return this.recorder?.flush() ?? Promise.resolve();
  }
}
