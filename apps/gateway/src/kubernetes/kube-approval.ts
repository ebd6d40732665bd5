import type { IncomingMessage } from 'node:http';
import type { KubeDecision } from '@portcullis/policy';
import type { ApprovalWording } from '../approvals/command-approvals.js';
import type { SessionCore } from '../core/session-core.types.js';
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
 * What kubectl is told about a held request (a Forbidden Status's message). A one-time approval is
 * bound to the request's text exactly (its exec arguments are joined with spaces: collapsing them
 * could match another command).
 */
export const KUBE_WORDING: ApprovalWording = {
  headline: (id, _rule, c) => `approval ${id} required: ${c.reason}`,
  oneTime: (headline, id) => ({ message: `${headline}. Not sent; after approval (POST /v1/approvals/${id}/approve) the same request goes through once` }),
  held: (headline, id, timeoutSeconds) => ({ message: headline, detail: `held for up to ${timeoutSeconds} s; approve with POST /v1/approvals/${id}/approve` }),
  notApproved: (d, c) => ({ message: `approval ${d.approvalId} ${d.status}${d.decidedBy ? ` by ${d.decidedBy}` : ''}${d.comment ? `: ${d.comment}` : ''} (${c.reason}); the request was not sent` }),
  unavailable: (headline, why) => `${headline}, but the approval could not be requested (${why}); the request was not sent`,
  textField: 'command',
  fingerprint: 'exact',
};

/**
 * Holds a request that needs approval: the HTTP request stays open (kubectl waits; there is no way to
 * tell it before the answer) until an approver decides, the policy's timeout passes or the client
 * goes. Wait mode only holds; fail-fast credentials (agents) get the approval id at once and a later
 * identical request by the same identity goes through once approved (one-time approval). The
 * approval itself is the core's (SessionCore.approvalsFor), as for every protocol.
 */
export async function holdForApproval(o: { core: SessionCore; call: KubeCall; decision: KubeDecision; req: IncomingMessage; log: Logger; text?: string }): Promise<KubeApprovalOutcome> {
  const { call, decision } = o;
  const session = call.session;
  const text = o.text ?? approvalText(call, o.req.method ?? 'GET');
  const aborter = new AbortController();
  const approvals = o.core.approvalsFor(session.id, { ...session.grant, policy: call.policy }, session.recorder, aborter.signal, o.log, KUBE_WORDING);
  if (!approvals) return { approved: false, message: `${decision.reason}; approvals are not available on this gateway, so it was not sent` };
  const onClose = (): void => aborter.abort();
  o.req.socket.once('close', onClose);
  try {
    const r = await approvals.request({ text, rule: decision.rule, reason: decision.reason }, (n) =>
      o.log.info({ approvalId: n.approvalId, rule: decision.rule ?? 'unnamed', request: text }, 'kubernetes request held for approval'),
    );
    if (r.approved) return { approved: true, approvalId: r.approvalId ?? '', decidedBy: r.decidedBy ?? null };
    return { approved: false, ...(r.approvalId ? { approvalId: r.approvalId } : {}), message: r.message };
  } finally {
    o.req.socket.off('close', onClose);
  }
}
