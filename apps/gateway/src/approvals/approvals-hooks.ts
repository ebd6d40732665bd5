import type { Gateway, HooksFactory } from '../gateway.js';
import type { SessionInfo } from '../postgres/client-session.js';
import type { SessionHooks } from '../policy/session-hooks.js';
import { ApprovalClient } from './approval-client.js';
import { createApprovalHook, type ApprovalPolicy } from './approval-hook.js';

/**
 * What a held statement needs from its session besides SessionInfo. The session adds these to the
 * info it hands to the hooks factory; without them approvals stay off for that session (the relay then
 * refuses statements that need approval: fail closed).
 */
export interface ApprovalSessionHandles {
  /** writes one whole protocol frame to the client (the NoticeResponse naming the approval) */
  notify(frame: Buffer): void;
  /** records a session event (approval.requested / approval.decided) */
  emit(type: 'approval.requested' | 'approval.decided', data: Record<string, unknown>): void;
  /** aborted when the session ends (client gone, gateway stopping): cancels a held approval */
  signal: AbortSignal;
}

const DEFAULT_TIMEOUT_SECONDS = 300;

/** The approval settings of a session's policy (`approval` in the policy document). */
export function approvalPolicyOf(info: SessionInfo): ApprovalPolicy {
  const doc = info.policy?.document as { approval?: { approvers?: string[]; timeoutSeconds?: number; webhook?: { url?: string } } } | undefined;
  return {
    name: info.policy?.name ?? null,
    approvers: doc?.approval?.approvers ?? [],
    timeoutSeconds: doc?.approval?.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
    webhookUrl: doc?.approval?.webhook?.url ?? null,
  };
}

/** Adds `onApprovalRequired` to a session's hooks. */
export function withApprovals(client: ApprovalClient, gateway: Gateway, info: SessionInfo & Partial<ApprovalSessionHandles>, hooks: SessionHooks): SessionHooks {
  const { notify, emit, signal } = info;
  if (!notify || !emit || !signal) {
    gateway.logger.warn({ session: info.sessionId }, 'session offers no approval handles; statements needing approval are refused');
    return hooks;
  }
  const onApprovalRequired = createApprovalHook({
    client,
    sessionId: info.sessionId,
    identity: info.credential.claims.sub,
    connection: info.credential.connection.name,
    gatewayId: gateway.id,
    pool: gateway.env.GATEWAY_POOL,
    policy: approvalPolicyOf(info),
    mode: info.credential.claims.amode ?? info.credential.connection.approvalMode,
    signal,
    toClient: notify,
    event: (type: 'approval.requested' | 'approval.decided', data: Record<string, unknown>) => emit(type, data),
    log: gateway.logger.child({ session: info.sessionId }),
  });
  // Keep the prototype chain / extra members (e.g. close()) of the default hooks.
  return Object.assign(Object.create(hooks) as SessionHooks, hooks, { onApprovalRequired });
}

export interface InstallApprovalsOptions {
  redisUrl?: string;
  /** BullMQ prefix; default env APPROVALS_QUEUE_PREFIX or `bull` */
  queuePrefix?: string;
  graceSeconds?: number;
  /** hooks factory to run first (e.g. a test's own policy); approvals wrap its result */
  inner?: HooksFactory;
}

/**
 * Turns approvals on for a started gateway: one ApprovalClient (BullMQ queue + NATS), and a hooks factory
 * that gives every session `onApprovalRequired`. Returns the client; close it before gateway.stop() so
 * held approvals are cancelled rather than left to expire.
 */
export async function installApprovals(gateway: Gateway, opts: InstallApprovalsOptions = {}): Promise<ApprovalClient> {
  if (!gateway.nc) throw new Error('installApprovals: start the gateway first');
  const client = new ApprovalClient({
    nc: gateway.nc,
    natsPrefix: gateway.env.NATS_PREFIX,
    redisUrl: opts.redisUrl ?? gateway.env.REDIS_URL,
    queuePrefix: opts.queuePrefix ?? process.env.APPROVALS_QUEUE_PREFIX ?? 'bull',
    verificationKeys: () => gateway.config.current?.snapshot.verificationKeys ?? [],
    gatewayKey: () => gateway.config.current?.eventKey ?? null,
    log: gateway.logger.child({ component: 'approvals' }),
    registry: gateway.metrics.registry,
    ...(opts.graceSeconds !== undefined ? { graceSeconds: opts.graceSeconds } : {}),
  });
  await client.start();
  gateway.approvalClient = client;
  const inner = opts.inner;
  gateway.setHooksFactory((info, defaults, gw) => withApprovals(client, gw, info, inner ? inner(info, defaults, gw) : defaults));
  return client;
}
