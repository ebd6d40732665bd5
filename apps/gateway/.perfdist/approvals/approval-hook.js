import { createHash, randomUUID } from 'node:crypto';
import { encodeNoticeResponse } from '@portcullis/protocol';
import { ApprovalUnavailableError } from './approval-client.js';
/**
 * Fingerprint of a statement for one-time approvals: sha256 of the text with runs of whitespace
 * collapsed and the ends trimmed, so a re-run that differs only in layout matches, anything else does not.
 */
export function statementFingerprint(sql) {
    return createHash('sha256').update(sql.replace(/\s+/g, ' ').trim()).digest('hex');
}
const DEFAULT_RULE = 'unnamed';
function approveHint(id) {
    return `Approve with: POST /v1/approvals/${id}/approve`;
}
/**
 * The session's `onApprovalRequired`: requests an approval and decides what the relay does with the
 * statement. Wait mode holds (NoticeResponse first, so a person in psql sees the id); fail-fast mode
 * (agents) answers at once with the approval id, and a later identical statement by the same identity
 * runs once when an approved one-time approval exists.
 */
export function createApprovalHook(ctx) {
    return async (stmt, verdict) => {
        const rule = verdict.rule ?? DEFAULT_RULE;
        const reason = verdict.reason;
        const fingerprint = statementFingerprint(stmt.sql);
        if (ctx.mode === 'fail-fast') {
            const used = await ctx.client.consumeOneTime({ identity: ctx.identity, connection: ctx.connection, fingerprint });
            if (used) {
                ctx.event('approval.decided', { approvalId: used, status: 'approved', decidedBy: null, comment: 'one-time approval used' });
                return { approved: true, approvalId: used };
            }
        }
        const approvalId = randomUUID();
        const job = {
            approvalId,
            sessionId: ctx.sessionId,
            identity: ctx.identity,
            connection: ctx.connection,
            gateway: ctx.gatewayId,
            pool: ctx.pool,
            statement: stmt.sql,
            fingerprint,
            policy: ctx.policy.name,
            rule,
            reason,
            approverGroups: [...ctx.policy.approvers],
            timeoutSeconds: ctx.policy.timeoutSeconds,
            mode: ctx.mode === 'fail-fast' ? 'one-time' : 'wait',
            webhook: ctx.policy.webhookUrl ? { url: ctx.policy.webhookUrl } : null,
            requestedAt: new Date().toISOString(),
        };
        const headline = `approval ${approvalId} required by rule ${rule}${reason ? `: ${reason}` : ''}`;
        try {
            if (job.mode === 'one-time') {
                await ctx.client.requestOneTime(job);
                ctx.event('approval.requested', { approvalId, sql: stmt.sql, rule, reason });
                return {
                    approved: false,
                    approvalId,
                    code: '42501',
                    message: `${headline}. ${approveHint(approvalId)}`,
                    detail: `The statement was not run. After approval the same identity may run the identical statement once (approval ${approvalId}).`,
                };
            }
            ctx.event('approval.requested', { approvalId, sql: stmt.sql, rule, reason });
            ctx.toClient(encodeNoticeResponse({ severity: 'NOTICE', code: '00000', message: `${headline}. ${approveHint(approvalId)}`, detail: `The statement is held for up to ${job.timeoutSeconds} s.` }));
            const d = await ctx.client.requestAndWait(job, { signal: ctx.signal });
            ctx.event('approval.decided', { approvalId, status: d.status, decidedBy: d.decidedBy, comment: d.comment });
            if (d.status === 'approved')
                return { approved: true, approvalId };
            const by = d.decidedBy ? ` by ${d.decidedBy}` : '';
            return { approved: false, approvalId, code: '42501', message: `approval ${approvalId} ${d.status}${by}${d.comment ? `: ${d.comment}` : ''}`, detail: 'The statement was not run.' };
        }
        catch (err) {
            ctx.log.warn({ approvalId, err: err instanceof Error ? err.message : String(err) }, 'approval could not be requested');
            const why = err instanceof ApprovalUnavailableError ? err.message : 'internal error';
            return { approved: false, approvalId, code: '42501', message: `${headline}, but the approval could not be requested (${why}); the statement was not run` };
        }
    };
}
//# sourceMappingURL=approval-hook.js.map