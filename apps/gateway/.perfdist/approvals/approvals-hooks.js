import { ApprovalClient } from './approval-client.js';
import { createApprovalHook } from './approval-hook.js';
const DEFAULT_TIMEOUT_SECONDS = 300;
/** The approval settings of a session's policy (`approval` in the policy document). */
export function approvalPolicyOf(info) {
    const doc = info.policy?.document;
    return {
        name: info.policy?.name ?? null,
        approvers: doc?.approval?.approvers ?? [],
        timeoutSeconds: doc?.approval?.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
        webhookUrl: doc?.approval?.webhook?.url ?? null,
    };
}
/** Adds `onApprovalRequired` to a session's hooks. */
export function withApprovals(client, gateway, info, hooks) {
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
        event: (type, data) => emit(type, data),
        log: gateway.logger.child({ session: info.sessionId }),
    });
    // Keep the prototype chain / extra members (e.g. close()) of the default hooks.
    return Object.assign(Object.create(hooks), hooks, { onApprovalRequired });
}
/**
 * Turns approvals on for a started gateway: one ApprovalClient (BullMQ queue + NATS), and a hooks factory
 * that gives every session `onApprovalRequired`. Returns the client; close it before gateway.stop() so
 * held approvals are cancelled rather than left to expire.
 */
export async function installApprovals(gateway, opts = {}) {
    if (!gateway.nc)
        throw new Error('installApprovals: start the gateway first');
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
    const inner = opts.inner;
    gateway.setHooksFactory((info, defaults, gw) => withApprovals(client, gw, info, inner ? inner(info, defaults, gw) : defaults));
    return client;
}
//# sourceMappingURL=approvals-hooks.js.map