import { createHash, randomUUID } from 'node:crypto';
import type { ApprovalConsequence, ApprovalJob } from '@portcullis/protocol';
import type { ResolvedPolicy } from '../config/config-store.js';
import type { Logger } from '../logger.js';
import { ApprovalUnavailableError, type ApprovalClient } from './approval-client.js';

/**
 * Fingerprint of a statement for one-time approvals: sha256 of the text with runs of whitespace
 * collapsed and the ends trimmed, so a re-run that differs only in layout matches, anything else does not.
 */
export function statementFingerprint(sql: string): string {
  return createHash('sha256').update(sql.replace(/\s+/g, ' ').trim()).digest('hex');
}

/** The approval settings of a session's policy (`approval` in the policy document). */
export interface ApprovalPolicy {
  name: string | null;
  approvers: readonly string[];
  timeoutSeconds: number;
  webhookUrl?: string | null;
}

const DEFAULT_TIMEOUT_SECONDS = 300;

export function approvalPolicyOf(policy: ResolvedPolicy | null): ApprovalPolicy {
  const approval = policy?.document.approval;
  return {
    name: policy?.name ?? null,
    approvers: approval?.approvers ?? [],
    timeoutSeconds: approval?.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
    webhookUrl: approval?.webhook?.url ?? null,
  };
}

/** A command a policy holds for approval, in any protocol (a SQL statement, a shell line, a Kubernetes request). */
export interface HeldCommand {
  /** what the approver sees and what a one-time approval is bound to (its fingerprint) */
  text: string;
  rule: string | null;
  reason: string | null;
  /** a write a consequence rule holds: what it would change (kept on the approval, shown to approvers) */
  consequence?: ApprovalConsequence;
}

/** What became of a held command: approved → it runs; otherwise `message` (and `detail`) tell the client why not. */
export type ApprovalResult =
  | { approved: true; approvalId?: string; decidedBy?: string | null }
  | { approved: false; approvalId?: string; message: string; detail?: string };

/** The notice a waiting client gets while its command is held (Postgres: a NoticeResponse). */
export interface HeldNotice {
  approvalId: string;
  message: string;
  detail: string;
}

/**
 * How a protocol tells its client what became of a held command (the decisions, events and approval
 * records are the same in every protocol; only the words differ). `command` is the held command,
 * `headline` the "approval <id> required …" line.
 */
export interface ApprovalWording {
  /** the first line of every message about the approval */
  headline(approvalId: string, rule: string, command: HeldCommand): string;
  /** fail-fast: the approval was requested and the command not run */
  oneTime(headline: string, approvalId: string, command: HeldCommand): { message: string; detail?: string };
  /** wait mode: what the client is told while it waits */
  held(headline: string, approvalId: string, timeoutSeconds: number): { message: string; detail: string };
  /** a decision other than approved (denied, expired, cancelled) */
  notApproved(d: { approvalId: string; status: string; decidedBy: string | null; comment: string | null }, command: HeldCommand): { message: string; detail?: string };
  /** the approval could not be requested (`why`: the approvals service's error) */
  unavailable(headline: string, why: string): string;
  /** the session event's field for the command's text (`sql` for statements, `command` otherwise) */
  textField: 'sql' | 'command';
  /**
   * The one-time approval's fingerprint: `statement` collapses runs of whitespace (a re-run that
   * differs only in layout matches); `exact` binds the text byte for byte.
   */
  fingerprint: 'statement' | 'exact';
}

function approveHint(id: string): string {
  return `Approve with: POST /v1/approvals/${id}/approve`;
}

const byRule = (approvalId: string, rule: string, c: HeldCommand): string => `approval ${approvalId} required by rule ${rule}${c.reason ? `: ${c.reason}` : ''}`;
const decided = (d: { approvalId: string; status: string; decidedBy: string | null; comment: string | null }): string =>
  `approval ${d.approvalId} ${d.status}${d.decidedBy ? ` by ${d.decidedBy}` : ''}${d.comment ? `: ${d.comment}` : ''}`;

/** A SQL statement held for approval (Postgres: NoticeResponse while it waits, 42501 with these when not run). */
export const STATEMENT_WORDING: ApprovalWording = {
  headline: byRule,
  oneTime: (headline, id) => ({
    message: `${headline}. ${approveHint(id)}`,
    detail: `The statement was not run. After approval the same identity may run the identical statement once (approval ${id}).`,
  }),
  held: (headline, id, timeoutSeconds) => ({ message: `${headline}. ${approveHint(id)}`, detail: `The statement is held for up to ${timeoutSeconds} s.` }),
  notApproved: (d) => ({ message: decided(d), detail: 'The statement was not run.' }),
  unavailable: (headline, why) => `${headline}, but the approval could not be requested (${why}); the statement was not run`,
  textField: 'sql',
  fingerprint: 'statement',
};

/** A shell command, exec or file operation held for approval (SSH, Kubernetes exec lines): one line on the terminal. */
export const COMMAND_WORDING: ApprovalWording = {
  headline: byRule,
  oneTime: (headline, id) => ({ message: `${headline}; not run. After approval the same command runs once (POST /v1/approvals/${id}/approve)` }),
  held: (_headline, id, timeoutSeconds) => ({ message: `approve with POST /v1/approvals/${id}/approve`, detail: `held for up to ${timeoutSeconds} s` }),
  notApproved: (d) => ({ message: `${decided(d)}; not run` }),
  unavailable: (headline, why) => `${headline}, but the approval could not be requested (${why}); not run`,
  textField: 'command',
  fingerprint: 'statement',
};

/** Approvals for one session's held commands (SessionCore.approvalsFor). */
export interface CommandApprovals {
  /**
   * Requests an approval for `command` and settles with the decision. Wait mode calls `held` first
   * (the client is told the approval id) and resolves when a human decided, the request expired or
   * the session ended; fail-fast mode (agents) answers at once, and a later identical command of the
   * same identity runs once when its one-time approval was granted.
   */
  request(command: HeldCommand, held: (notice: HeldNotice) => void): Promise<ApprovalResult>;
}

/** What approvals need to know about their session. */
export interface ApprovalSessionContext {
  client: ApprovalClient;
  sessionId: string;
  /** identity subject */
  identity: string;
  connection: string;
  gatewayId: string;
  pool: string;
  policy: ApprovalPolicy;
  /** credential `amode` or the connection's approvalMode */
  mode: 'wait' | 'fail-fast';
  /** aborted when the session ends (or the request that waits goes) */
  signal: AbortSignal;
  /** what the client is told (default: STATEMENT_WORDING) */
  wording?: ApprovalWording;
  /** session events */
  event(type: 'approval.requested' | 'approval.decided', data: Record<string, unknown>): void;
  log: Logger;
}

const DEFAULT_RULE = 'unnamed';

export function createCommandApprovals(ctx: ApprovalSessionContext): CommandApprovals {
  return { request: (command, held) => requestApproval(ctx, command, held) };
}

async function requestApproval(ctx: ApprovalSessionContext, command: HeldCommand, held: (notice: HeldNotice) => void): Promise<ApprovalResult> {
  const words = ctx.wording ?? STATEMENT_WORDING;
  const rule = command.rule ?? DEFAULT_RULE;
  const reason = command.reason;
  const fingerprint = words.fingerprint === 'exact' ? createHash('sha256').update(command.text).digest('hex') : statementFingerprint(command.text);

  if (ctx.mode === 'fail-fast') {
    const used = await ctx.client.consumeOneTime({ identity: ctx.identity, connection: ctx.connection, fingerprint });
    if (used) {
      ctx.event('approval.decided', { approvalId: used, status: 'approved', decidedBy: null, comment: 'one-time approval used' });
      return { approved: true, approvalId: used, decidedBy: null };
    }
  }

  const approvalId = randomUUID();
  const job: ApprovalJob = {
    approvalId,
    sessionId: ctx.sessionId,
    identity: ctx.identity,
    connection: ctx.connection,
    gateway: ctx.gatewayId,
    pool: ctx.pool,
    statement: command.text,
    fingerprint,
    policy: ctx.policy.name,
    rule,
    reason,
    approverGroups: [...ctx.policy.approvers],
    timeoutSeconds: ctx.policy.timeoutSeconds,
    mode: ctx.mode === 'fail-fast' ? 'one-time' : 'wait',
    webhook: ctx.policy.webhookUrl ? { url: ctx.policy.webhookUrl } : null,
    requestedAt: new Date().toISOString(),
    ...(command.consequence ? { consequence: command.consequence } : {}),
  };
  const headline = words.headline(approvalId, rule, command);
  const requested = { approvalId, [words.textField]: command.text, rule, reason };

  try {
    if (job.mode === 'one-time') {
      await ctx.client.requestOneTime(job);
      ctx.event('approval.requested', requested);
      return { approved: false, approvalId, ...words.oneTime(headline, approvalId, command) };
    }
    ctx.event('approval.requested', requested);
    held({ approvalId, ...words.held(headline, approvalId, job.timeoutSeconds) });
    const d = await ctx.client.requestAndWait(job, { signal: ctx.signal });
    ctx.event('approval.decided', { approvalId, status: d.status, decidedBy: d.decidedBy, comment: d.comment });
    if (d.status === 'approved') return { approved: true, approvalId, decidedBy: d.decidedBy };
    return { approved: false, approvalId, ...words.notApproved({ approvalId, status: d.status, decidedBy: d.decidedBy, comment: d.comment }, command) };
  } catch (err) {
    ctx.log.warn({ approvalId, err: err instanceof Error ? err.message : String(err) }, 'approval could not be requested');
    const why = err instanceof ApprovalUnavailableError ? err.message : 'internal error';
    return { approved: false, approvalId, message: words.unavailable(headline, why) };
  }
}
