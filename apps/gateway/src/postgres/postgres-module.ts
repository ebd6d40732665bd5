import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Subscription } from '@nats-io/transport-node';
import { generate as generateCert } from 'selfsigned';
import { encodeNoticeResponse, natsNames } from '@portcullis/protocol';
import type { CommandApprovals } from '../approvals/command-approvals.js';
import type { ProtocolModule, SessionCore } from '../core/session-core.types.js';
import { createPolicyHooks } from './policy-hooks.js';
import { ALLOW_ALL_HOOKS, type ApprovalOutcome, type SessionHooks, type StatementInfo, type Verdict } from './session-hooks.js';
import { CancelRegistry, sendUpstreamCancel } from './cancel-registry.js';
import { ClientSession, type SessionInfo, type SessionIo } from './client-session.js';
import { fastLaneUnavailable, trimNativeHeap } from './fast-lane.js';
import { SideConnection } from './side-connection.js';

/** How long a client's cancel socket stays open while another gateway of the pool may deliver its cancel. */
const RELAYED_CANCEL_WAIT_MS = 2000;

/** Test seam: replaces or wraps the SQL policy hooks of each session (receives the defaults). */
export type HooksFactory = (session: SessionInfo, defaults: SessionHooks) => SessionHooks;

export interface PostgresModuleOptions {
  hooks?: HooksFactory;
}

/**
 * The Postgres wire protocol: the listener (GATEWAY_PG_PORT/HOST), TLS towards clients, cancel keys
 * (and their relay between the pool's gateways over NATS), the native fast lane, and one ClientSession
 * per client, whose statements the SQL policy hooks decide.
 */
export class PostgresModule implements ProtocolModule {
  readonly protocol = 'postgres';
  readonly cancels = new CancelRegistry();
  private core: SessionCore | null = null;
  private server: Server | null = null;
  private tls: SecureContext | null = null;
  /** GATEWAY_FAST_LANE, and the native module loaded */
  private fastLane = false;
  private cancelSub: Subscription | null = null;

  constructor(private readonly opts: PostgresModuleOptions = {}) {}

  async listen(core: SessionCore): Promise<AddressInfo> {
    this.core = core;
    const env = core.env;
    this.tls = await this.loadTls(core);
    this.subscribeCancels(core);
    const laneMissing = fastLaneUnavailable();
    this.fastLane = env.GATEWAY_FAST_LANE && !laneMissing;
    if (env.GATEWAY_FAST_LANE && laneMissing) core.logger.warn({ reason: laneMissing }, 'fast lane unavailable: every session is relayed in JavaScript (slower, same behaviour)');
    const server = createServer({ pauseOnConnect: false, noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    server.on('error', (err) => core.logger.error({ err: err.message }, 'postgres listener error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(env.GATEWAY_PG_PORT, env.GATEWAY_PG_HOST, () => resolve());
    });
    core.logger.info({ tls: !!this.tls, allowPlaintext: env.GATEWAY_ALLOW_PLAINTEXT, fastLane: this.fastLane }, 'postgres listener ready');
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.cancelSub?.unsubscribe();
  }

  compact(): boolean {
    return trimNativeHeap();
  }

  private accept(socket: Socket): void {
    const core = this.core!;
    const session = new ClientSession(socket, {
      core,
      logger: core.logger,
      metrics: core.metrics,
      tls: this.tls,
      allowPlaintext: core.env.GATEWAY_ALLOW_PLAINTEXT,
      fastLane: this.fastLane,
      cancels: this.cancels,
      buffers: { process: core.buffers, sessionBytes: core.env.GATEWAY_SESSION_BUFFER_BYTES },
      relayCancel: (pid, secret) => this.relayCancel(pid, secret),
      hooksFor: (info, io) => this.hooksFor(info, io),
    });
    core.sessions.add(session);
    void session.run();
  }

  /** The session's SQL policy hooks: the policy's (or allow-all), the test seam's, and approvals when the core has them. */
  private hooksFor(info: SessionInfo, io: SessionIo): SessionHooks {
    const core = this.core!;
    let hooks: SessionHooks = ALLOW_ALL_HOOKS;
    if (info.policy && core.policyLib) {
      hooks = createPolicyHooks({
        // read at each statement: the core may move the session to a newer version of its policy
        policy: () => info.policy!,
        lib: core.policyLib,
        maskingKey: info.config.maskingKey,
        side: new SideConnection(info.openSide),
        logger: io.log,
        onStatementTooComplex: () => core.metrics.statementsTooComplex.inc(),
      });
    }
    if (this.opts.hooks) hooks = this.opts.hooks(info, hooks);
    const approvals = core.approvalsFor(info.sessionId, info, io.recorder, io.signal, io.log);
    // without approvals, a statement that needs one is refused (the relay's default: fail closed)
    return approvals ? { ...hooks, onApprovalRequired: approvalHook(approvals, io) } : hooks;
  }

  private subscribeCancels(core: SessionCore): void {
    const subject = natsNames(core.env.NATS_PREFIX).cancel(core.pool);
    this.cancelSub = core.nats.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        try {
          const body = msg.json<{ pid: number; secret: string; from: string }>();
          if (body.from === core.gatewayId || typeof body.pid !== 'number' || typeof body.secret !== 'string') return;
          const target = this.cancels.lookup(body.pid, Buffer.from(body.secret, 'base64'));
          if (target) {
            core.logger.info({ pid: body.pid, from: body.from }, 'cancel relayed from another gateway');
            // answered once delivered: the asking gateway closes its client's cancel socket only then
            void sendUpstreamCancel(target).then(() => {
              if (msg.reply) msg.respond('delivered');
            });
          }
        } catch {
          // not ours to parse
        }
      },
    });
  }

  /** Settles when the gateway holding the key answered that it delivered the cancel, or after RELAYED_CANCEL_WAIT_MS. */
  private async relayCancel(pid: number, secret: Buffer): Promise<void> {
    const core = this.core!;
    if (core.nats.isClosed()) return;
    try {
      const body = JSON.stringify({ pid, secret: secret.toString('base64'), from: core.gatewayId });
      await core.nats.request(natsNames(core.env.NATS_PREFIX).cancel(core.pool), body, { timeout: RELAYED_CANCEL_WAIT_MS });
    } catch {
      // no gateway knows the key (or none answered in time): cancels are best effort, as in Postgres
    }
  }

  private async loadTls(core: SessionCore): Promise<SecureContext> {
    const env = core.env;
    if (env.GATEWAY_TLS_CERT && env.GATEWAY_TLS_KEY) {
      return createSecureContext({ cert: readFileSync(env.GATEWAY_TLS_CERT), key: readFileSync(env.GATEWAY_TLS_KEY) });
    }
    const pems = await generateCert([{ name: 'commonName', value: 'portcullis-gateway' }], { keySize: 2048, algorithm: 'sha256' } as never);
    core.logger.info('using a self-signed TLS certificate (set GATEWAY_TLS_CERT/GATEWAY_TLS_KEY in production)');
    return createSecureContext({ cert: pems.cert, key: pems.private });
  }
}

/**
 * A held statement through the core's approvals: wait mode tells the client the approval id in a
 * NoticeResponse first; a statement that is not approved is refused with 42501 and the reason.
 */
function approvalHook(approvals: CommandApprovals, io: SessionIo): (stmt: StatementInfo, verdict: Verdict) => Promise<ApprovalOutcome> {
  return async (stmt, verdict) => {
    const c = verdict.consequence;
    const shown = c?.sample?.rows.length;
    const r = await approvals.request({ text: stmt.sql, rule: verdict.rule, reason: verdict.reason, ...(c ? { consequence: c } : {}) }, (n) =>
      io.toClient(encodeNoticeResponse({ severity: 'NOTICE', code: '00000', message: n.message, detail: `${n.detail}${shown ? ` The approver sees the first ${shown} of the rows it would change, masked.` : ''}` })),
    );
    return r.approved ? r : { ...r, code: '42501' };
  };
}
