import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ApprovalJob } from '@portcullis/protocol';
import type { KubeDecision } from '@portcullis/policy';
import { ApprovalUnavailableError, type ApprovalClient } from '../approvals/approval-client.js';
import type { Logger } from '../logger.js';
import type { KubeCall } from './kube-listener.js';

export type KubeApprovalOutcome = { approved: true; approvalId: string; decidedBy: string | null } | { approved: false; approvalId?: string; message: string };

/** The request as an approver reads it: `DELETE /apis/apps/v1/namespaces/prod-a/deployments/web` and its attributes. */
export function approvalText(call: KubeCall, method: string): string {
  const path = call.target.split('?')[0];
  const exec = call.info.command?.length ? ` -- ${call.info.command.join(' ')}` : '';
  return `kubectl ${method} ${path}${exec}`;
}

/**
 * Holds a request that needs approval: the HTTP request stays open (kubectl waits; there is no way to
 * tell it before the answer) until an approver decides, the policy's timeout passes or the client
 * goes. Wait mode only holds; fail-fast credentials (agents) get the approval id at once and a later
 * identical request by the same identity goes through once approved (one-time approval).
 */
export async function holdForApproval(o: { client: ApprovalClient | null; call: KubeCall; decision: KubeDecision; req: IncomingMessage; log: Logger; text?: string }): Promise<KubeApprovalOutcome> {
  const { client, call, decision } = o;
  const rule = decision.rule ?? 'unnamed';
  if (!client) return { approved: false, message: `${decision.reason}; approvals are not available on this gateway, so it was not sent` };
  const cred = call.credential;
  const doc = call.policy?.document as { approval?: { approvers?: string[]; timeoutSeconds?: number; webhook?: { url?: string } } } | undefined;
  const mode = cred.claims.amode ?? cred.connection.approvalMode;
  const text = o.text ?? approvalText(call, o.req.method ?? 'GET');
  const fingerprint = createHash('sha256').update(text).digest('hex');
  const session = call.session;
  if (mode === 'fail-fast') {
    const used = await client.consumeOneTime({ identity: cred.claims.sub, connection: cred.connection.name, fingerprint }).catch(() => null);
    if (used) {
      session.emit('approval.decided', { approvalId: used, status: 'approved', decidedBy: null, comment: 'one-time approval used' });
      return { approved: true, approvalId: used, decidedBy: null };
    }
  }
  const approvalId = randomUUID();
  const job: ApprovalJob = {
    approvalId,
    sessionId: session.id,
    identity: cred.claims.sub,
    connection: cred.connection.name,
    ...session.jobOrigin(),
    statement: text,
    fingerprint,
    policy: call.policy?.name ?? null,
    rule,
    reason: decision.reason,
    approverGroups: [...(doc?.approval?.approvers ?? [])],
    timeoutSeconds: doc?.approval?.timeoutSeconds ?? 300,
    mode: mode === 'fail-fast' ? 'one-time' : 'wait',
    webhook: doc?.approval?.webhook?.url ? { url: doc.approval.webhook.url } : null,
    requestedAt: new Date().toISOString(),
  };
  const headline = `approval ${approvalId} required: ${decision.reason}`;
  const aborter = new AbortController();
  const onClose = (): void => aborter.abort();
  o.req.socket.once('close', onClose);
  try {
    if (job.mode === 'one-time') {
      await client.requestOneTime(job);
      session.emit('approval.requested', { approvalId, command: text, rule, reason: decision.reason });
      return { approved: false, approvalId, message: `${headline}. Not sent; after approval (POST /v1/approvals/${approvalId}/approve) the same request goes through once` };
    }
    session.emit('approval.requested', { approvalId, command: text, rule, reason: decision.reason });
    o.log.info({ approvalId, rule, request: text }, 'kubernetes request held for approval');
    const d = await client.requestAndWait(job, { signal: aborter.signal });
    session.emit('approval.decided', { approvalId, status: d.status, decidedBy: d.decidedBy, comment: d.comment });
    if (d.status === 'approved') return { approved: true, approvalId, decidedBy: d.decidedBy };
    return { approved: false, approvalId, message: `approval ${approvalId} ${d.status}${d.decidedBy ? ` by ${d.decidedBy}` : ''}${d.comment ? `: ${d.comment}` : ''} (${decision.reason}); the request was not sent` };
  } catch (err) {
    o.log.warn({ approvalId, err: (err as Error).message }, 'approval could not be requested');
    const why = err instanceof ApprovalUnavailableError ? err.message : 'internal error';
    return { approved: false, approvalId, message: `${headline}, but the approval could not be requested (${why}); the request was not sent` };
  } finally {
    o.req.socket.off('close', onClose);
  }
}
