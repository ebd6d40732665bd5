import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { request as httpsRequest, createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { hostname } from 'node:os';
import { GATEWAY_TLS_KEY_CONTEXT, accessCallerOf, generateGatewayCa, issueGatewayServerCert, mayUseConnection, openSealed } from '@portcullis/protocol';
import type { KubeDecision, KubeMasking, KubeRequestInfo } from '@portcullis/policy';
import { claimedConnection } from '../auth/credential-verifier.js';
import type { ActiveConfig, ResolvedPolicy } from '../config/config-store.js';
import { AccessRefused } from '../core/access.js';
import type { SessionCore, SessionGrant } from '../core/session-core.types.js';
import type { GatewayMetrics } from '../http/metrics.js';
import type { Logger } from '../logger.js';
import type { PolicyLib } from '../core/policy-lib.js';
import type { TerminalPolicy, CommandVerdict } from '../terminal/command-policy.types.js';
import { holdForApproval } from './kube-approval.js';
import { KubeSession } from './kube-session.js';
import { shortageMessage, type BufferHold, type BufferShortage, type IdentityBuffers } from '../core/identity-buffers.js';
import { sendStatus, sendStatusOnSocket, type StatusDetails, type StatusReason } from './kube-status.js';
import { relayUpgrade } from './kube-upgrade.js';
import { KubeUpstreamError, KubeUpstreams, type KubeUpstream } from './kube-upstream.js';

export interface KubeListenerOptions {
  /** admission, session.start, approvals and the live sessions' registry */
  core: SessionCore;
  logger: Logger;
  metrics: GatewayMetrics;
  /** opens the snapshot's sealed TLS key */
  poolKey: string;
  config(): ActiveConfig | null;
  policyLib(): PolicyLib | null;
  /** the shell-command decisions of a policy (exec `command=`, exec -it lines): the SSH module's */
  shellPolicy(policy: ResolvedPolicy | null): TerminalPolicy;
  /** largest request body taken (default 8 MiB; kube-apiserver's own limit is 3 MiB) */
  maxBodyBytes?: number;
  /** largest response body the gateway holds to mask (default 256 MiB; never more than the buffers' share) */
  maxResponseBytes?: number;
  /** the process buffer budget and each identity's share of it (GATEWAY_BUFFER_BYTES, GATEWAY_SESSION_BUFFER_BYTES) */
  buffers?: IdentityBuffers;
  /** a fixed certificate (GATEWAY_TLS_CERT/KEY) instead of the pool's */
  tls?: { cert: string; key: string } | null;
}

/** The path prefix: `https://<gateway>:8443/k8s/<connection>/api/v1/…` */
export const KUBE_PATH_PREFIX = '/k8s/';
const CONNECTION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
/** hop-by-hop headers (RFC 9110 §7.6.1) and those the gateway sets itself */
const DROPPED_REQUEST_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'authorization', 'content-length', 'expect']);
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'trailer', 'upgrade']);

interface Routed {
  connection: string;
  /** the API path and query after the prefix */
  target: string;
}

/** Splits `/k8s/<connection>/<api path>`; null when the path is not under the prefix. */
export function routeKubePath(url: string): Routed | null {
  if (!url.startsWith(KUBE_PATH_PREFIX)) return null;
  const rest = url.slice(KUBE_PATH_PREFIX.length);
  const cut = rest.search(/[/?]/);
  const connection = cut < 0 ? rest : rest.slice(0, cut);
  if (!CONNECTION_NAME.test(connection)) return null;
  let target = cut < 0 ? '/' : rest.slice(cut);
  if (target.startsWith('?')) target = `/${target}`;
  return { connection, target };
}

/**
 * An API path without the prefix (`kubectl get --raw /api/…` drops the kubeconfig server's path):
 * the connection the bearer credential is bound to. Its `cn` is read unverified only to choose the
 * connection; the credential is then verified for exactly that one, as for a prefixed path.
 */
export function routeByCredential(url: string, authorization: string | undefined): Routed | null {
  if (!/^\/(api|apis|version|openapi)(\/|\?|$)/.test(url)) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  const connection = m ? claimedConnection(m[1]!) : null;
  if (!connection || !CONNECTION_NAME.test(connection)) return null;
  return { connection, target: url };
}

/** What a request is decided and forwarded with. */
export interface KubeCall {
  id: string;
  info: KubeRequestInfo;
  target: string;
  /** the core's admission of the request's credential */
  credential: SessionGrant;
  policy: ResolvedPolicy | null;
  session: KubeSession;
  upstream: KubeUpstream;
  masking: KubeMasking | null;
  started: number;
  /** set when an approver let the request through */
  approval?: { approvalId: string; decidedBy: string | null };
}

class Refusal extends Error {
  constructor(
    readonly code: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: StatusDetails,
    readonly headers: Record<string, string> = {},
    /** refused before its body was read to the end: the connection closes after the answer */
    readonly cutsBody = false,
  ) {
    super(message);
  }
}

/** A request refused because the gateway's buffer memory is in use: 503 with Retry-After (kubectl's client retries). */
function bufferRefusal(short: BufferShortage, what: string, shareBytes: number, cutsBody = false): Refusal {
  return new Refusal(503, 'ServiceUnavailable', `portcullis: ${shortageMessage(short, what, shareBytes)}`, undefined, { 'retry-after': '1' }, cutsBody);
}

/**
 * The gateway's Kubernetes API listener (HTTPS, GATEWAY_KUBERNETES_PORT). Each request: the bearer
 * token is a gateway credential for the connection in the path (verified like a Postgres password),
 * the request is classified as kube-apiserver would and decided by the connection's policy
 * (block → a Status kubectl prints; require_approval → held open until decided), then forwarded to
 * the API server with the connection's own credential (and, if the connection says so, the caller's
 * identity as Impersonate-User/Group). Responses are masked (Secrets, detectors) before they leave.
 * One session per client connection and credential (a LiveSession of the core): session.start, a
 * `kube.request` event per request, `terminal` events for exec/attach, session.end when the client goes.
 */
export class KubeListener {
  private server: Server | null = null;
  private readonly upstreams = new KubeUpstreams();
  private readonly sessionsBySocket = new WeakMap<Socket, KubeSession>();
  private tlsSealed: string | null = null;
  /** admissions by token, for the config revision they were made under (kubectl sends the token on every request) */
  private readonly verified = new Map<string, { revision: number; grant: SessionGrant }>();
  /** the masker of each resolved policy (a new config brings new policy objects) */
  private readonly maskingByPolicy = new WeakMap<ResolvedPolicy, { key: Buffer; lib: PolicyLib; masking: KubeMasking | null }>();
  /** request attributes by `method target`, for the policy library that parsed them (requestInfo) */
  private infos: { lib: PolicyLib | null; byTarget: Map<string, KubeRequestInfo> } = { lib: null, byTarget: new Map() };
  port = 0;

  constructor(private readonly o: KubeListenerOptions) {}

  async start(port: number, host: string): Promise<number> {
    const initial = this.poolTls() ?? this.o.tls ?? (await selfSigned());
    this.server = createServer({ cert: initial.cert, key: initial.key, ALPNProtocols: ['http/1.1'], requestTimeout: 0, headersTimeout: 30_000, keepAliveTimeout: 60_000, maxHeaderSize: 64 * 1024 });
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.handleUpgrade(req, socket, head));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      // malformed HTTP: a 400 Status, that connection closes, the others go on
      if (!socket.writable || err.code === 'ECONNRESET') return socket.destroy();
      sendStatusOnSocket(socket, err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400, 'BadRequest', `malformed HTTP request (${err.code ?? 'parse error'})`);
    });
    this.server.on('tlsClientError', () => undefined);
    this.server.on('error', (err) => this.o.logger.error({ err: err.message }, 'kubernetes listener error'));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }

  /** The pool's certificate from the snapshot (sealed key opened), or null when there is none. */
  private poolTls(): { cert: string; key: string } | null {
    if (this.o.tls) return null;
    const tls = this.o.config()?.snapshot.tls;
    if (!tls) return null;
    try {
      const key = openSealed(this.o.poolKey, tls.key, GATEWAY_TLS_KEY_CONTEXT);
      this.tlsSealed = tls.key.ct;
      return { cert: `${tls.certPem.trim()}\n${tls.caPem.trim()}\n`, key };
    } catch (err) {
      this.o.logger.error({ err: (err as Error).message }, 'cannot open the pool\'s gateway TLS key with GATEWAY_POOL_KEY; keeping the current certificate');
      return null;
    }
  }

  configChanged(c: ActiveConfig): void {
    if (this.server && !this.o.tls && c.snapshot.tls && c.snapshot.tls.key.ct !== this.tlsSealed) {
      const t = this.poolTls();
      if (t) this.server.setSecureContext({ cert: t.cert, key: t.key });
    }
    this.upstreams.retain(new Set(c.connections.keys()));
    this.verified.clear();
  }

  /**
   * Stops accepting and closes the client connections at once (the core then ends their sessions,
   * before the sockets' close events arrive); settles when the server is closed.
   */
  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections();
    await closed;
    this.upstreams.close();
  }

  // ---- one request ----

  // A request of a connection whose credential and session are known, allowed by the policy, runs
  // from its first byte to its upstream write without waiting on a promise: each step returns a
  // value when it has one (a promise only when it must wait: first admission, session start, an
  // approval, a request body). Every await costs a microtask turn and the async machinery around
  // it, which on the small-GET path was a large share of the gateway's CPU per request.
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let call: KubeCall | null = null;
    try {
      const admitted = this.admit(req);
      call = admitted instanceof Promise ? await admitted : admitted;
      const decided = this.decide(call, req, res);
      const decision = decided instanceof Promise ? await decided : decided;
      if (decision.action !== 'allow') return; // answered
      await this.forward(call, req, res);
    } catch (err) {
      this.refuse(res, err, call);
    }
  }

  private refuse(res: ServerResponse, err: unknown, call: KubeCall | null): void {
    if (err instanceof Refusal) {
      // a body cut off at the limit (or refused for buffer memory) leaves the connection mid-request: it closes after the answer
      const cut = err instanceof BodyTooLarge || err.cutsBody;
      sendStatus(res, err.code, err.reason, err.message, err.details, { ...err.headers, ...(cut ? { connection: 'close' } : {}) });
      call?.session.request(call, { status: err.code, action: err.code === 403 ? 'block' : 'error', reason: err.message });
      return;
    }
    this.o.logger.error({ err: (err as Error).message, stack: (err as Error).stack }, 'kubernetes request failed');
    sendStatus(res, 500, 'InternalError', 'the gateway could not handle this request');
    call?.session.request(call, { status: 500, action: 'error', reason: 'internal error' });
  }

  /**
   * Authenticates the request and classifies it; throws (or rejects with) Refusal. A promise only
   * when it must wait (a credential not yet verified under this config, a new session).
   */
  private admit(req: IncomingMessage): KubeCall | Promise<KubeCall> {
    const started = Date.now();
    const routed = routeKubePath(req.url ?? '') ?? routeByCredential(req.url ?? '', req.headers.authorization);
    if (!routed) throw new Refusal(404, 'NotFound', `the gateway serves Kubernetes API requests under ${KUBE_PATH_PREFIX}<connection>/ only`);
    const config = this.o.config();
    if (!config) throw new Refusal(503, 'ServiceUnavailable', 'the gateway has not received its configuration yet; try again shortly');
    const lib = this.o.policyLib();
    if (!lib) throw new Refusal(503, 'ServiceUnavailable', 'the gateway\'s policy library is not loaded; requests are refused');
    const credential = this.authenticate(req, routed.connection, config);
    if (credential instanceof Promise) return credential.then((c) => this.admitAs(req, routed, config, lib, c, started));
    return this.admitAs(req, routed, config, lib, credential, started);
  }

  /** admit(), once the credential is verified. */
  private admitAs(req: IncomingMessage, routed: Routed, config: ActiveConfig, lib: PolicyLib, credential: SessionGrant, started: number): KubeCall | Promise<KubeCall> {
    const conn = credential.connection;
    if (!conn.kubernetes) throw new Refusal(404, 'NotFound', `connection "${conn.name}" is not a Kubernetes connection`);
    for (const h of Object.keys(req.headers)) {
      // the caller's identity is the credential's; an Impersonate-* header would pick another through
      // the gateway's own credential (privilege escalation): never forwarded, refused so the caller knows
      if (h.startsWith('impersonate-')) throw new Refusal(403, 'Forbidden', `impersonation (${h}) is not allowed through the gateway: requests run as ${conn.kubernetes.impersonate ? `your identity (${credential.claims.sub})` : 'the connection\'s credential'}`);
    }
    let info: KubeRequestInfo;
    try {
      info = this.requestInfo(lib, req.method ?? 'GET', routed.target);
    } catch (err) {
      throw new Refusal(400, 'BadRequest', (err as Error).message);
    }
    const policy = credential.policy;
    let upstream: KubeUpstream;
    try {
      upstream = this.upstreams.get(conn);
    } catch (err) {
      this.o.logger.error({ connection: conn.name, err: (err as Error).message }, 'kubernetes upstream unusable');
      throw new Refusal(503, 'ServiceUnavailable', err instanceof KubeUpstreamError ? err.message : 'the connection\'s API server cannot be reached');
    }
    const masking = policy ? this.maskingOf(policy, config, lib) : null;
    const make = (session: KubeSession): KubeCall => ({ id: randomUUID(), info, target: routed.target, credential, policy, session, upstream, masking, started });
    const session = this.sessionFor(req.socket, credential);
    return session instanceof Promise ? session.then(make) : make(session);
  }

  /**
   * The request's attributes (lib.parseRequestInfo), remembered by method and target for the policy
   * library that parsed them: clients repeat the same few URLs, and the parse (percent-decoding,
   * URLSearchParams) was a measurable share of a small GET. The objects are frozen (shared by
   * requests) and the map is dropped when full or when another library is loaded.
   */
  private requestInfo(lib: PolicyLib, method: string, target: string): KubeRequestInfo {
    if (this.infos.lib !== lib || this.infos.byTarget.size >= REQUEST_INFO_CACHE) this.infos = { lib, byTarget: new Map() };
    const key = `${method} ${target}`;
    let info = this.infos.byTarget.get(key);
    if (!info) {
      info = freezeInfo(lib.parseRequestInfo(method, target)); // throws KubeRequestError: nothing remembered
      this.infos.byTarget.set(key, info);
    }
    return info;
  }

  private maskingOf(policy: ResolvedPolicy, config: ActiveConfig, lib: PolicyLib): KubeMasking | null {
    const known = this.maskingByPolicy.get(policy);
    if (known && known.key === config.maskingKey && known.lib === lib) return known.masking;
    const masking = lib.createKubeMasking(policy.document as never, { hmacKey: config.maskingKey });
    this.maskingByPolicy.set(policy, { key: config.maskingKey, lib, masking });
    return masking;
  }

  /**
   * The core's admission of the bearer token (cached for the config revision: a value then, a
   * promise when the core is asked); throws (or rejects with) Refusal.
   */
  private authenticate(req: IncomingMessage, connection: string, config: ActiveConfig): SessionGrant | Promise<SessionGrant> {
    const auth = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    const source = req.socket.remoteAddress ?? null;
    if (!m) {
      this.o.core.authFailed({ source, identity: null, reason: 'invalid', target: connection, detail: 'no bearer token' }, connection, 'kubernetes');
      throw new Refusal(401, 'Unauthorized', 'a gateway credential is required (Authorization: Bearer <token>; use `portcullis kubeconfig`)');
    }
    const token = m[1]!;
    const cached = this.verified.get(token);
    if (
      cached && cached.revision === config.revision && cached.grant.connection.name === connection && (cached.grant.expiresAt ?? Infinity) > Date.now() + 5000 &&
      // an access grant ends on its own clock, not with a new config
      mayUseConnection(accessCallerOf(cached.grant.claims, cached.grant.expiresAt, config.revokedGrants), cached.grant.connection, Date.now()).allowed
    ) {
      return cached.grant;
    }
    return this.verify(token, connection, source);
  }

  private async verify(token: string, connection: string, source: string | null): Promise<SessionGrant> {
    try {
      const grant = await this.o.core.authenticate({ protocol: 'kubernetes', token, connection, source, claimedUser: null });
      if (this.verified.size > 10_000) this.verified.clear();
      this.verified.set(token, { revision: grant.config.revision, grant });
      return grant;
    } catch (err) {
      if (!(err instanceof AccessRefused)) throw err;
      switch (err.reason) {
        case 'auth_wrong_connection':
        case 'auth_not_allowed':
          throw new Refusal(403, 'Forbidden', err.message);
        case 'unknown_connection':
          throw new Refusal(404, 'NotFound', err.message);
        case 'wrong_protocol':
          throw new Refusal(404, 'NotFound', `connection "${connection}" is not a Kubernetes connection`);
        case 'no_config':
        case 'policy_unavailable':
        case 'recording_unavailable':
          throw new Refusal(503, 'ServiceUnavailable', err.message);
        default:
          throw new Refusal(401, 'Unauthorized', err.message);
      }
    }
  }

  /** The session of this client connection and credential: the one it has, or (a promise of) a new one registered with the core. */
  private sessionFor(socket: Socket, grant: SessionGrant): KubeSession | Promise<KubeSession> {
    const known = this.sessionsBySocket.get(socket);
    if (known && !known.isEnded && known.grant.claims.jti === grant.claims.jti) return known;
    known?.close('credential_changed');
    return this.startSession(socket, grant);
  }

  private async startSession(socket: Socket, grant: SessionGrant): Promise<KubeSession> {
    const session = new KubeSession({ core: this.o.core, grant, clientAddr: socket.remoteAddress ?? null });
    try {
      await session.start();
    } catch (err) {
      if (err instanceof AccessRefused) throw new Refusal(503, 'ServiceUnavailable', err.message);
      throw err;
    }
    this.sessionsBySocket.set(socket, session);
    socket.once('close', () => session.close('client_closed'));
    // a config that arrived meanwhile may end it at once: this request is refused with the reason
    const ended = session.endedBy;
    if (ended) throw new Refusal(403, 'Forbidden', ended);
    return session;
  }

  /**
   * The policy's decision, exec commands included; answers a block and a refused approval itself
   * (returns the non-allow decision then). An approved request comes back as allow.
   */
  private decide(call: KubeCall, req: IncomingMessage, res?: ServerResponse, socket?: Duplex): KubeDecision | Promise<KubeDecision> {
    const lib = this.o.policyLib()!;
    const d: KubeDecision = call.policy ? lib.evaluateKubeRequest(call.info, call.policy.document as never) : { action: 'allow', rule: null, reason: 'no policy on this connection' };
    // exec's command is decided with the same shell guardrails as SSH exec, a long one off the event loop
    // (the core's CommandAnalysis): an exec waits for that decision, other requests do not wait here
    if (d.action !== 'block' && call.info.subresource === 'exec' && call.info.command && call.info.command.length > 0 && call.policy) {
      const text = shellJoin(call.info.command);
      const shell = this.o.shellPolicy(call.policy);
      const withShell = (v: CommandVerdict): KubeDecision | Promise<KubeDecision> =>
        this.settle(call, SEVERITY[v.action] > SEVERITY[d.action] ? { action: v.action, rule: v.rule, reason: v.reason ?? `${text}: ${v.action}` } : d, req, res, socket);
      return shell.commandAsync ? shell.commandAsync(text).then(withShell) : withShell(shell.command(text));
    }
    return this.settle(call, d, req, res, socket);
  }

  /** decide()'s answer to `d`: an allow returned as it is, a block answered, an approval waited for. */
  private settle(call: KubeCall, d: KubeDecision, req: IncomingMessage, res?: ServerResponse, socket?: Duplex): KubeDecision | Promise<KubeDecision> {
    this.o.metrics.countDecision(d.action);
    if (d.action === 'allow') return d;
    const details = { name: call.info.name || undefined, group: call.info.apiGroup || undefined, kind: call.info.resource || undefined };
    const answer = (code: number, reason: StatusReason, message: string, action: string): void => {
      if (res) sendStatus(res, code, reason, message, details);
      else if (socket) sendStatusOnSocket(socket, code, reason, message, details);
      call.session.request(call, { status: code, action, rule: d.rule, reason: message });
    };
    if (d.action === 'block') {
      answer(403, 'Forbidden', `portcullis: ${d.reason}`, 'block');
      return d;
    }
    const held = d;
    return holdForApproval({ core: this.o.core, call, decision: held, req, log: this.o.logger }).then((outcome): KubeDecision => {
      if (outcome.approved) {
        call.approval = outcome;
        return { action: 'allow', rule: held.rule, reason: `approved (${outcome.approvalId})` };
      }
      answer(403, 'Forbidden', `portcullis: ${outcome.message}`, 'require_approval');
      return held;
    });
  }

  private requestHeaders(call: KubeCall, req: IncomingMessage, mode: string): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers as IncomingHttpHeaders)) {
      if (value === undefined || DROPPED_REQUEST_HEADERS.has(name) || name.startsWith('impersonate-') || name.startsWith('x-remote-')) continue;
      out[name] = value;
    }
    out.host = call.upstream.url.host;
    if (call.upstream.authorization) out.authorization = call.upstream.authorization;
    if (call.upstream.impersonate) {
      out['impersonate-user'] = call.credential.claims.sub;
      if (call.credential.claims.groups.length) out['impersonate-group'] = [...call.credential.claims.groups];
    }
    if (mode === 'proxy') {
      // a pod's, service's or node's own HTTP: its Accept is its own business, but it must come uncompressed to be read
      out['accept-encoding'] = 'identity';
    } else if (mode !== 'none') {
      // JSON only: protobuf, CBOR and YAML cannot be masked here
      out.accept = jsonOnlyAccept(req.headers.accept);
      out['accept-encoding'] = 'identity';
    }
    return out;
  }

  private upstreamPath(call: KubeCall): string {
    const base = call.upstream.url.pathname.replace(/\/+$/, '');
    return `${base}${call.target}`;
  }

  private async forward(call: KubeCall, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const hold = this.o.buffers?.hold(call.credential.claims.sub) ?? null;
    try {
      const body = readBody(req, Math.min(this.o.maxBodyBytes ?? 8 * 1024 * 1024, this.o.buffers?.shareBytes ?? Infinity), hold);
      await this.forwardHeld(call, req, res, hold, body instanceof Promise ? await body : body);
    } finally {
      hold?.release();
    }
  }

  /** forward(), with the bytes it holds (the request body, a response being masked) taken from `hold`. */
  private forwardHeld(call: KubeCall, req: IncomingMessage, res: ServerResponse, hold: BufferHold | null, body: Buffer): Promise<void> {
    const mode = call.masking?.modeFor(call.info) ?? 'none';
    const share = this.o.buffers?.shareBytes ?? Infinity;
    const heldBody = hold?.bytes ?? 0;
    const headers = this.requestHeaders(call, req, mode);
    if (body.length > 0 || req.headers['content-length'] !== undefined) headers['content-length'] = body.length;
    const longLived = call.info.verb === 'watch' || /[?&]follow=(true|1)\b/.test(call.target);
    if (longLived) call.session.request(call, { phase: 'start', status: 0, action: 'allow' });
    return new Promise<void>((resolve) => {
      const up = httpsRequest({
        protocol: 'https:', hostname: call.upstream.url.hostname, port: call.upstream.url.port || 443,
        method: req.method, path: this.upstreamPath(call), headers, agent: call.upstream.agent,
      });
      let done = false;
      // a watch or `logs -f` ends with its session (revoked credential, lost access, gateway stopping)
      const release = longLived ? call.session.hold(() => {
        up.destroy();
        res.destroy();
      }) : () => undefined;
      const finish = (status: number, extra: Record<string, unknown> = {}): void => {
        if (done) return;
        done = true;
        release();
        call.session.request(call, { status, action: call.approval ? 'require_approval' : 'allow', ...(longLived ? { phase: 'end' } : {}), ...extra });
        resolve();
      };
      res.on('close', () => {
        if (!up.destroyed) up.destroy();
        finish(res.statusCode, { clientClosed: !res.writableFinished });
      });
      up.on('error', (err) => {
        this.o.logger.warn({ err: err.message, connection: call.credential.connection.name }, 'kubernetes upstream request failed');
        if (!res.headersSent) sendStatus(res, 503, 'ServiceUnavailable', `the API server of connection "${call.credential.connection.name}" cannot be reached`);
        else res.destroy();
        finish(503, { error: err.message });
      });
      up.on('response', (ures) => {
        // the API server answers after it has read the body: its bytes are free for the response
        hold?.giveBack(heldBody);
        relayResponse(call, mode, ures, res, Math.min(this.o.maxResponseBytes ?? 256 * 1024 * 1024, share), hold, this.o.logger, this.o.policyLib()!).then((r) => {
          if (r.withheld) finish(502, { withheld: r.withheld });
          else if (res.writableFinished || res.destroyed) finish(ures.statusCode ?? 0, { bytes: r.bytes, masked: r.masked });
          else res.once('finish', () => finish(ures.statusCode ?? 0, { bytes: r.bytes, masked: r.masked }));
        }, (err: Error) => {
          // nothing may escape this promise: an unhandled rejection stops the process, every user's sessions with it
          this.o.logger.error({ err: err.message, stack: err.stack, connection: call.credential.connection.name }, 'kubernetes response relay failed');
          ures.destroy();
          if (!res.headersSent) sendStatus(res, 502, 'InternalError', 'portcullis: the gateway could not relay the API server\'s response');
          else res.destroy();
          finish(502, { error: 'the response could not be relayed' });
        });
      });
      // no body: the request head goes out as one string write (an empty Buffer after it made it a writev)
      if (body.length > 0) up.end(body);
      else up.end();
    });
  }

  // ---- upgrades: exec, attach, port-forward ----

  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => undefined);
    let call: KubeCall | null = null;
    try {
      call = await this.admit(req);
      const sub = call.info.resource === 'pods' ? call.info.subresource : '';
      if (!(sub === 'exec' || sub === 'attach' || sub === 'portforward')) {
        throw new Refusal(400, 'BadRequest', 'only exec, attach and port-forward may upgrade the connection through the gateway');
      }
      const d = await this.decide(call, req, undefined, socket);
      if (d.action !== 'allow') return;
      relayUpgrade({
        call, req, socket, head, headers: this.requestHeaders(call, req, 'none'), path: this.upstreamPath(call),
        shell: call.policy ? this.o.shellPolicy(call.policy) : null, core: this.o.core, logger: this.o.logger,
      });
    } catch (err) {
      if (err instanceof Refusal) {
        sendStatusOnSocket(socket, err.code, err.reason, err.message, err.details);
        call?.session.request(call, { status: err.code, action: err.code === 403 ? 'block' : 'error', reason: err.message });
      } else {
        this.o.logger.error({ err: (err as Error).message }, 'kubernetes upgrade failed');
        sendStatusOnSocket(socket, 500, 'InternalError', 'the gateway could not handle this request');
      }
    }
  }
}

const SEVERITY: Record<string, number> = { allow: 0, require_approval: 1, block: 2 };

/** Parsed request attributes remembered (KubeListener.requestInfo); the map starts again when full. */
const REQUEST_INFO_CACHE = 4096;

/** A parsed request's attributes, shared by the requests of one URL: nothing may change them. */
function freezeInfo(info: KubeRequestInfo): KubeRequestInfo {
  Object.freeze(info.parts);
  if (info.command) Object.freeze(info.command);
  return Object.freeze(info);
}

/** The exec command as one shell line (each argument quoted when it needs to be), for the shell guardrails. */
export function shellJoin(args: readonly string[]): string {
  return args.map((a) => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** The client's Accept with everything but JSON taken out (kubectl's Table requests are JSON too). */
export function jsonOnlyAccept(accept: string | undefined): string {
  const kept = (accept ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => /^application\/json(\s*;|$)/i.test(s));
  return kept.length ? kept.join(', ') : 'application/json';
}

class BodyTooLarge extends Refusal {}

const EMPTY = Buffer.alloc(0);

/** The request body (a promise of it, when it has one). */
function readBody(req: IncomingMessage, max: number, hold: BufferHold | null): Buffer | Promise<Buffer> {
  // no Content-Length and no Transfer-Encoding: HTTP/1.1 says there is no body (most GETs)
  if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) {
    req.resume();
    return EMPTY;
  }
  return readBodyBytes(req, max, hold);
}

async function readBodyBytes(req: IncomingMessage, max: number, hold: BufferHold | null): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) {
    req.resume();
    throw new BodyTooLarge(413, 'RequestEntityTooLarge', `request body of ${declared} bytes is larger than the gateway takes (${max} bytes)`);
  }
  // listeners, not an async iterator: leaving one early would destroy the request, and the 413 with it
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const stop = (err: Refusal): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.resume(); // the rest is read and dropped while the answer (connection: close) goes out
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) return stop(new BodyTooLarge(413, 'RequestEntityTooLarge', `request body is larger than the gateway takes (${max} bytes)`));
      const short = hold?.take(chunk.length) ?? null;
      if (short) return stop(bufferRefusal(short, 'this request body', hold!.shareBytes, true));
      parts.push(chunk);
    };
    const onEnd = (): void => resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', reject);
    req.once('close', () => reject(new Error('the client closed the request before its body ended')));
  });
}

function responseHeaders(ures: IncomingMessage, drop: readonly string[] = []): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(ures.headers)) {
    if (value === undefined || DROPPED_RESPONSE_HEADERS.has(name) || drop.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * Sends the API server's response on, masked as `mode` says. JSON bodies are held whole and masked
 * (a response the masker cannot read is withheld, never passed raw); watch streams are masked event
 * by event; log text line by line.
 */
async function relayResponse(call: KubeCall, mode: string, ures: IncomingMessage, res: ServerResponse, maxBytes: number, hold: BufferHold | null, log: Logger, lib: PolicyLib): Promise<{ bytes: number; masked: number; withheld?: string }> {
  const status = ures.statusCode ?? 502;
  const type = String(ures.headers['content-type'] ?? '');
  const approvalHeader: OutgoingHttpHeaders = call.approval ? { warning: `299 - "portcullis: approval ${call.approval.approvalId} granted${call.approval.decidedBy ? ` by ${call.approval.decidedBy}` : ''}"` } : {};
  const masking = call.masking;
  if (mode === 'none' || !masking) {
    const declared = Number(ures.headers['content-length'] ?? -1);
    if (declared >= 0 && declared <= SMALL_BODY) {
      // a small body is sent with its headers in one write (one TLS record, one syscall)
      const body = await readSmall(ures, declared);
      if (body === null) {
        if (!res.headersSent) sendStatus(res, 502, 'InternalError', 'the API server closed the response early');
        return { bytes: 0, masked: 0 };
      }
      res.writeHead(status, { ...responseHeaders(ures), ...mergeWarning(ures, approvalHeader) });
      res.end(body);
      return { bytes: body.length, masked: 0 };
    }
    res.writeHead(status, { ...responseHeaders(ures), ...mergeWarning(ures, approvalHeader) });
    let bytes = 0;
    ures.on('data', (c: Buffer) => (bytes += c.length));
    ures.pipe(res);
    await new Promise<void>((r) => ures.once('end', r).once('close', r));
    return { bytes, masked: 0 };
  }
  const withhold = (why: string): { bytes: number; masked: number; withheld: string } => {
    ures.destroy();
    log.warn({ why, status, type }, 'kubernetes response withheld');
    sendStatus(res, 502, 'InternalError', `portcullis: the response was withheld because the policy masks it and ${why}`);
    return { bytes: 0, masked: 0, withheld: why };
  };
  if (ures.headers['content-encoding'] && ures.headers['content-encoding'] !== 'identity') return withhold(`it came compressed (${String(ures.headers['content-encoding'])})`);
  if (mode === 'proxy') {
    // whatever the pod, service or node answers: JSON and text can be read, anything else is withheld
    if (status === 204 || status === 304 || ures.headers['content-length'] === '0') {
      res.writeHead(status, { ...responseHeaders(ures), ...mergeWarning(ures, approvalHeader) });
      res.end();
      ures.resume();
      return { bytes: 0, masked: 0 };
    }
    if (!PROXY_JSON.test(type) && !PROXY_TEXT.test(type)) return withhold(`it came from a proxied ${call.info.resource || 'endpoint'} as ${type || 'an unnamed content type'}, which cannot be masked`);
    if (PROXY_TEXT.test(type)) {
      res.writeHead(status, { ...responseHeaders(ures, ['content-length']), ...mergeWarning(ures, approvalHeader) });
      return maskLogStream(ures, res, masking);
    }
  }
  if (mode === 'text') {
    if (!/^text\/plain/i.test(type) && status < 300) return withhold(`its content type ${type || '(none)'} is not text`);
    res.writeHead(status, { ...responseHeaders(ures, ['content-length']), ...mergeWarning(ures, approvalHeader) });
    return maskLogStream(ures, res, masking);
  }
  const isJson = mode === 'proxy' || /^application\/json/i.test(type);
  if (!isJson) {
    // plain-text error bodies (a 404 for an unknown path) carry no objects
    if (status >= 400 && /^text\/plain/i.test(type)) {
      res.writeHead(status, { ...responseHeaders(ures), ...mergeWarning(ures, approvalHeader) });
      ures.pipe(res);
      await new Promise<void>((r) => ures.once('end', r).once('close', r));
      return { bytes: 0, masked: 0 };
    }
    if (status === 204 || status === 304) {
      res.writeHead(status, responseHeaders(ures));
      res.end();
      ures.resume();
      return { bytes: 0, masked: 0 };
    }
    return withhold(`its content type ${type || '(none)'} is not JSON`);
  }
  if (mode !== 'proxy' && (/stream=watch/i.test(type) || call.info.verb === 'watch')) {
    res.writeHead(status, { ...responseHeaders(ures, ['content-length']), ...mergeWarning(ures, approvalHeader) });
    return maskWatchStream(call, ures, res, masking, lib);
  }
  const held = await holdResponse(ures, maxBytes, hold);
  if (held.tooLarge) return withhold(`it is larger than ${maxBytes} bytes`);
  if (held.short) {
    ures.destroy();
    log.warn({ short: held.short, status, type }, 'kubernetes response refused: buffer memory in use');
    const refusal = bufferRefusal(held.short, 'the response to mask', hold!.shareBytes);
    sendStatus(res, refusal.code, refusal.reason, refusal.message, undefined, refusal.headers);
    return { bytes: 0, masked: 0, withheld: `buffer memory (${held.short})` };
  }
  if (!held.body) {
    if (!res.headersSent) sendStatus(res, 502, 'InternalError', 'the API server closed the response early');
    return { bytes: held.size, masked: 0 };
  }
  const whole = held.body;
  let out: string | Buffer;
  let masked = 0;
  try {
    const r = masking.maskJsonText(whole, call.info);
    out = r.text;
    masked = r.stats.values;
    if (mode === 'proxy' && masking.detectors) {
      // a proxied JSON body is also text: its strings pass the detectors like a log line
      const t = masking.maskLog(typeof out === 'string' ? out : out.toString('utf8'));
      if (t.findings > 0) {
        out = t.text;
        masked += t.findings;
      }
    }
  } catch {
    return withhold('it is not JSON the gateway can read');
  }
  const headers = { ...responseHeaders(ures, ['content-length']), ...mergeWarning(ures, approvalHeader), 'content-length': Buffer.byteLength(out) };
  res.writeHead(status, headers);
  res.end(out);
  return { bytes: Buffer.byteLength(out), masked };
}

/** Proxied content types the gateway can read: JSON (masked as API objects and as text) and text (the detectors) */
const PROXY_JSON = /^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i;
const PROXY_TEXT = /^(text\/[a-z0-9.+-]+|application\/([a-z0-9.+-]*\+)?(xml|yaml|x-yaml|javascript|x-www-form-urlencoded))\s*(;|$)/i;

/** Responses up to this size are held and sent in one write when nothing masks them. */
const SMALL_BODY = 64 * 1024;

/**
 * A response body held whole to be masked, chunk by chunk against `maxBytes` and the buffer hold;
 * stops reading at the first chunk over either (the caller answers and destroys the response).
 * Listeners, not an async iterator: the iterator's promise per chunk and its setup were a visible
 * share of a small response's CPU.
 */
function holdResponse(ures: IncomingMessage, maxBytes: number, hold: BufferHold | null): Promise<{ body?: Buffer; tooLarge?: true; short?: BufferShortage; size: number }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (r: { body?: Buffer; tooLarge?: true; short?: BufferShortage }): void => {
      if (settled) return;
      settled = true;
      ures.off('data', onData);
      resolve({ ...r, size });
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) return settle({ tooLarge: true });
      const short = hold?.take(chunk.length) ?? null;
      if (short) return settle({ short });
      parts.push(chunk);
    };
    ures.on('data', onData);
    ures.once('end', () => settle({ body: parts.length === 1 ? parts[0]! : Buffer.concat(parts, size) }));
    ures.once('error', () => settle({}));
    ures.once('close', () => settle({})); // after 'end' this changes nothing: ended early
  });
}

/** The whole body of a response that declared `length` bytes; null when it ended short or failed. */
function readSmall(ures: IncomingMessage, length: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let size = 0;
    ures.on('data', (c: Buffer) => {
      parts.push(c);
      size += c.length;
    });
    ures.once('end', () => resolve(size === length ? (parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)) : null));
    ures.once('error', () => resolve(null));
    ures.once('close', () => resolve(null)); // after 'end' this changes nothing
  });
}

function mergeWarning(ures: IncomingMessage, extra: OutgoingHttpHeaders): OutgoingHttpHeaders {
  if (!extra.warning) return {};
  const have: unknown = ures.headers.warning;
  const list: string[] = have === undefined ? [] : Array.isArray(have) ? have.map(String) : [String(have)];
  return { warning: [...list, String(extra.warning)] } as unknown as OutgoingHttpHeaders;
}

async function maskWatchStream(call: KubeCall, ures: IncomingMessage, res: ServerResponse, masking: KubeMasking, lib: PolicyLib): Promise<{ bytes: number; masked: number; withheld?: string }> {
  const splitter = new lib.JsonDocumentSplitter();
  let bytes = 0;
  let masked = 0;
  try {
    for await (const chunk of ures as AsyncIterable<Buffer>) {
      let out = '';
      for (const doc of splitter.push(chunk)) {
        const r = masking.maskJsonText(doc, call.info);
        masked += r.stats.values;
        out += `${typeof r.text === 'string' ? r.text : r.text.toString('utf8')}\n`;
      }
      if (out) {
        bytes += Buffer.byteLength(out);
        // a client that leaves while the stream waits for it to read: 'close', never 'drain' (the relay stayed held)
        if (!res.write(out)) await new Promise((r) => res.once('drain', r).once('close', r));
      }
    }
  } catch {
    // an event it cannot read ends the watch (the client re-lists), never passes raw
    ures.destroy();
    res.destroy();
    return { bytes, masked, withheld: 'a watch event could not be read' };
  }
  res.end();
  return { bytes, masked };
}

async function maskLogStream(ures: IncomingMessage, res: ServerResponse, masking: KubeMasking): Promise<{ bytes: number; masked: number }> {
  let pending = '';
  let bytes = 0;
  let masked = 0;
  // false when the client has not taken what was sent: the loop below waits for it (backpressure)
  const send = (text: string): boolean => {
    const r = masking.maskLog(text);
    masked += r.findings;
    bytes += Buffer.byteLength(r.text);
    return res.write(r.text);
  };
  // a line is masked whole; a partial line waits for its end (or 64 KiB, or a quiet 200 ms for `-f`)
  let timer: NodeJS.Timeout | null = null;
  const flushIdle = (): void => {
    timer = null;
    if (pending) {
      send(pending);
      pending = '';
    }
  };
  const decoder = new TextDecoder('utf-8');
  try {
    for await (const chunk of ures as AsyncIterable<Buffer>) {
      pending += decoder.decode(chunk, { stream: true });
      const cut = pending.lastIndexOf('\n');
      if (cut >= 0) {
        send(pending.slice(0, cut + 1));
        pending = pending.slice(cut + 1);
      }
      if (pending.length > 64 * 1024) flushIdle();
      if (timer) clearTimeout(timer);
      if (pending) timer = setTimeout(flushIdle, 200);
      // a client that does not read (logs -f of a chatty pod) must not make the gateway hold the stream
      if (res.writableNeedDrain && !res.destroyed) await new Promise((r) => res.once('drain', r).once('close', r));
    }
  } catch {
    // the response was aborted: the client went (its request to the API server is destroyed with it) or the
    // API server's connection broke; the client's response is cut, never ended as if the log were whole
    if (timer) clearTimeout(timer);
    res.destroy();
    return { bytes, masked };
  }
  if (timer) clearTimeout(timer);
  pending += decoder.decode();
  if (pending) send(pending);
  res.end();
  return { bytes, masked };
}

/** Until the snapshot brings the pool's certificate: a throwaway CA and server certificate (ECDSA P-256, fast to make). */
async function selfSigned(): Promise<{ cert: string; key: string }> {
  const ca = await generateGatewayCa('portcullis-gateway-temporary');
  const cert = await issueGatewayServerCert(ca, ['localhost', '127.0.0.1', hostname()]);
  return { cert: `${cert.certPem.trim()}\n${ca.caPem.trim()}\n`, key: cert.keyPem };
}

