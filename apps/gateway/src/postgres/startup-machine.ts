import {
  CANCEL_REQUEST_CODE,
  DEFAULT_REFUSED_SETTINGS,
  FrontendMessageType as F,
  GSSENC_REQUEST_CODE,
  LEXING_SETTINGS,
  PgFramer,
  ProtocolError,
  SSL_REQUEST_CODE,
  decodeCancelRequest,
  decodePassword,
  decodeStartupMessage,
  reportedLexingProblem,
  requestedLexingProblem,
  startupSettings,
} from '@portcullis/protocol';
import type { AccessRefusalReason } from '../core/session-core.types.js';

/**
 * The Postgres startup and authentication phase as a state machine without I/O: it is fed the
 * client's bytes and what the core and the target answered, and returns what to do — answer an
 * SSLRequest, upgrade to TLS, forward a cancel, ask for the password, have the core verify it,
 * connect upstream with these settings, greet, refuse with a SQLSTATE, or close without a word.
 * client-session.ts owns the sockets and carries the actions out.
 * (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP)
 */
export const StartupStep = {
  /** waiting for SSLRequest, GSSENCRequest, CancelRequest or StartupMessage */
  Startup: 'startup',
  /** answered 'S': waiting for the TLS handshake */
  Tls: 'tls',
  /** asked for the password (AuthenticationCleartextPassword) */
  Password: 'password',
  /** the core verifies the credential */
  Verifying: 'verifying',
  /** admitted: recording and the upstream connection */
  Connecting: 'connecting',
  /** greeted (the relay takes over), refused, closed, or a cancel was handed on */
  Done: 'done',
} as const;
export type StartupStep = (typeof StartupStep)[keyof typeof StartupStep];

export type StartupAction =
  /** one raw byte answering SSLRequest / GSSENCRequest */
  | { kind: 'answer'; byte: 'S' | 'N' }
  /** run the TLS handshake on the client socket, then call tlsReady() */
  | { kind: 'upgrade-tls' }
  /** a CancelRequest: deliver it, then close the socket (no reply, as Postgres) */
  | { kind: 'cancel'; pid: number; secret: Buffer }
  /** send AuthenticationCleartextPassword */
  | { kind: 'ask-password' }
  /** have the core admit `token` for `connection`, then call verified() or refused() */
  | { kind: 'verify'; token: string; connection: string; user: string | null }
  /** record the session's start and connect upstream with `settings`, then call upstreamReady() or upstreamFailed() / refused() */
  | { kind: 'connect'; settings: Record<string, string> }
  /** greet the client (AuthenticationOk, ParameterStatus…, BackendKeyData, ReadyForQuery): the relay takes over */
  | { kind: 'greet' }
  /**
   * a FATAL ErrorResponse, then close. `reason` labels the refusal (metrics, session.end);
   * `protocolError`: the client broke the protocol (counted as such)
   */
  | { kind: 'refuse'; code: string; message: string; reason: string; detail?: string; protocolError?: true }
  /** close without a reply (what cannot be a startup packet: Postgres logs it and says nothing) */
  | { kind: 'close'; reason: string };

export interface StartupOptions {
  /** a TLS certificate to answer SSLRequest with 'S' */
  tls: boolean;
  /** sessions without TLS are accepted (GATEWAY_ALLOW_PLAINTEXT) */
  allowPlaintext: boolean;
  /** whether the gateway has a config yet (sessions are refused before the password until it does) */
  configured(): boolean;
}

/** The SQLSTATE each refusal of the core is given to a Postgres client. */
export const REFUSAL_SQLSTATES: Readonly<Record<AccessRefusalReason, string>> = {
  no_config: '57P03',
  recording_unavailable: '57P03',
  unknown_connection: '3D000',
  wrong_protocol: '28000',
  policy_unavailable: '55000',
  auth_invalid: '28P01',
  auth_expired: '28P01',
  auth_revoked: '28P01',
  auth_wrong_connection: '28P01',
  auth_not_allowed: '28P01',
};

/** SQLSTATEs of a target refusing a startup setting: its message says which and why, and is passed on. */
const SETTING_ERRORS = new Set(['22023', '22P02', '42704', '42501', '55P02']);

export class StartupMachine {
  private step: StartupStep = StartupStep.Startup;
  private tlsActive = false;
  private params: Record<string, string> = {};

  /** `framer`: the client's (in startup mode); the relay goes on reading from it after the greeting. */
  constructor(
    private readonly opts: StartupOptions,
    readonly framer: PgFramer = new PgFramer({ startup: true, from: 'client' }),
  ) {}

  get state(): StartupStep {
    return this.step;
  }

  /** the client's session runs inside TLS */
  get tls(): boolean {
    return this.tlsActive;
  }

  /** the StartupMessage's parameters (user, database, options, …) */
  get startupParams(): Readonly<Record<string, string>> {
    return this.params;
  }

  /** Bytes from the client. Returns the actions in order; none when more bytes are needed. */
  received(chunk: Buffer): StartupAction[] {
    if (this.step === StartupStep.Done || chunk.length === 0) return [];
    // Bytes after SSLRequest and before the handshake would be injected outside TLS (CVE-2021-23214).
    if (this.step === StartupStep.Tls) return [this.protocolError(new ProtocolError('bad_startup', 'unexpected data after SSLRequest'))];
    this.framer.push(chunk);
    const out: StartupAction[] = [];
    try {
      while (this.step === StartupStep.Startup || this.step === StartupStep.Password) {
        const f = this.framer.next();
        if (!f) break;
        if (this.step === StartupStep.Startup) this.startupPacket(f.payload, out);
        else this.password(f.type, f.payload, out);
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      out.push(this.protocolError(err));
    }
    return out;
  }

  /** The TLS handshake finished: startup goes on inside it. */
  tlsReady(): StartupAction[] {
    if (this.step !== StartupStep.Tls) return [];
    this.tlsActive = true;
    this.step = StartupStep.Startup;
    return [];
  }

  /**
   * The core admitted the credential. `refusedSettings`: the policy's (default role and
   * session_authorization): every other setting the client asked for goes to the target, with the
   * settings the gateway's parser depends on pinned as the client's own — a client-given value
   * outranks ALTER ROLE/DATABASE … SET and postgresql.conf, so neither those nor a reload can change
   * them under a session, and RESET returns to these values (lexing-settings.ts).
   */
  verified(refusedSettings: readonly string[] = DEFAULT_REFUSED_SETTINGS): StartupAction[] {
    if (this.step !== StartupStep.Verifying) return [];
    const asked = startupSettings(this.params, refusedSettings);
    if (asked.kind === 'refused') return [this.refuse(asked.code, asked.message, 'setting_refused')];
    const settings: Record<string, string> = {};
    for (const s of asked.settings) settings[s.name] = s.value;
    settings.standard_conforming_strings = 'on';
    settings.client_encoding ??= 'UTF8';
    this.step = StartupStep.Connecting;
    return [{ kind: 'connect', settings }];
  }

  /** The core refused the session (credential, connection, policy, recording). */
  refused(reason: AccessRefusalReason, message: string): StartupAction[] {
    if (this.step === StartupStep.Done) return [];
    const code = REFUSAL_SQLSTATES[reason];
    return [this.refuse(code, code === '28P01' ? `password authentication failed: ${message}` : message, reason)];
  }

  /**
   * The target could not be reached or refused the session. The client learns the target refused —
   * and which of its settings, when that was why — never where the target is or which user is used.
   */
  upstreamFailed(connection: string, err: { sqlState?: string | null; serverMessage?: string | null }): StartupAction[] {
    if (this.step !== StartupStep.Connecting) return [];
    if (err.sqlState && SETTING_ERRORS.has(err.sqlState) && err.serverMessage) {
      return [this.refuse(err.sqlState, `the target refused a setting of this session: ${err.serverMessage}`, 'setting_refused')];
    }
    return [this.refuse(err.sqlState === '53300' ? '53300' : '08001', `could not connect to the target of connection "${connection}"`, 'upstream_failed')];
  }

  /**
   * The target accepted the session and reported its parameters: a setting the gateway's parser
   * depends on that the target does not report, or reports with a value the parser cannot read as it
   * does, refuses the session; otherwise the client is greeted.
   */
  upstreamReady(parameters: ReadonlyMap<string, string>): StartupAction[] {
    if (this.step !== StartupStep.Connecting) return [];
    for (const name of LEXING_SETTINGS) {
      const value = parameters.get(name);
      const problem = value === undefined ? `the target did not report ${name}; the gateway cannot be sure it reads statements as the target does` : reportedLexingProblem(name, value);
      if (problem) return [this.refuse('0A000', problem, 'lexing_state')];
    }
    this.step = StartupStep.Done;
    return [{ kind: 'greet' }];
  }

  private startupPacket(payload: Buffer, out: StartupAction[]): void {
    const code = payload.readInt32BE(0);
    if (code === SSL_REQUEST_CODE) {
      if (this.tlsActive) throw new ProtocolError('bad_startup', 'SSLRequest inside TLS');
      if (!this.opts.tls) {
        out.push({ kind: 'answer', byte: 'N' });
        return;
      }
      // Bytes after SSLRequest and before the handshake would be injected outside TLS (CVE-2021-23214): refuse.
      if (this.framer.buffered() > 0) throw new ProtocolError('bad_startup', 'unexpected data after SSLRequest');
      this.step = StartupStep.Tls;
      out.push({ kind: 'answer', byte: 'S' }, { kind: 'upgrade-tls' });
      return;
    }
    if (code === GSSENC_REQUEST_CODE) {
      out.push({ kind: 'answer', byte: 'N' });
      return;
    }
    if (code === CANCEL_REQUEST_CODE) {
      const c = decodeCancelRequest(payload);
      this.step = StartupStep.Done;
      out.push({ kind: 'cancel', pid: c.pid, secret: Buffer.from(c.secretKey) });
      return;
    }
    this.params = decodeStartupMessage(payload).params;
    out.push(this.startupMessage());
  }

  private startupMessage(): StartupAction {
    const params = this.params;
    if (!this.opts.configured()) return this.refuse('57P03', 'the gateway has not received its configuration yet; try again shortly', 'no_config');
    if (!this.tlsActive && !this.opts.allowPlaintext) return this.refuse('28000', 'the gateway requires TLS: connect with sslmode=require', 'tls_required');
    if (params.replication && params.replication !== 'false' && params.replication !== 'off' && params.replication !== '0') {
      return this.refuse('28000', 'replication connections are not allowed through the gateway', 'replication');
    }
    for (const name of LEXING_SETTINGS) {
      // refused before the upstream connect; the server's own report is checked again (upstreamReady)
      const problem = params[name] === undefined ? null : requestedLexingProblem(name, params[name]);
      if (problem) return this.refuse('22023', problem, name);
    }
    this.step = StartupStep.Password;
    return { kind: 'ask-password' };
  }

  private password(type: number, payload: Buffer, out: StartupAction[]): void {
    if (type !== F.Password) throw new ProtocolError('malformed', 'expected a password message');
    const { password } = decodePassword(payload);
    this.step = StartupStep.Verifying;
    const params = this.params;
    out.push({ kind: 'verify', token: password, connection: params.database || params.user || '', user: params.user || null });
  }

  private refuse(code: string, message: string, reason: string): StartupAction {
    this.step = StartupStep.Done;
    return { kind: 'refuse', code, message, reason };
  }

  private protocolError(err: ProtocolError): StartupAction {
    const awaitingStartup = this.framer.awaitingStartup;
    this.step = StartupStep.Done;
    // As Postgres does (a COMMERROR: logged, nothing sent): what cannot be a startup packet's length
    // — a Terminate sent before any startup packet, a stray probe — is just closed.
    if (err.code === 'length_out_of_range' && awaitingStartup) return { kind: 'close', reason: err.message };
    if (err.code === 'unsupported_protocol') return { kind: 'refuse', code: '0A000', message: err.message, reason: 'protocol_error', protocolError: true };
    return { kind: 'refuse', code: '08P01', message: `invalid startup packet: ${err.message}`, reason: 'protocol_error', protocolError: true };
  }
}
