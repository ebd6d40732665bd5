import { createHmac } from 'node:crypto';
import type { ApprovalModel as Approval } from '@portcullis/db';
import type { Logger } from 'pino';

export const WEBHOOK_SIGNATURE_HEADER = 'X-Portcullis-Signature';

/** `sha256=<hex HMAC-SHA256 of the exact body bytes>`; receivers recompute it with the shared webhook key. */
export function webhookSignature(body: string, key: Buffer): string {
  return `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
}

export interface WebhookOptions {
  key: Buffer;
  apiUrl: string;
  attempts: number;
  timeoutMs: number;
  /** first retry delay; doubles each attempt */
  backoffMs?: number;
}

export type WebhookOutcome = { ok: true; status: number; attempts: number } | { ok: false; error: string; attempts: number };

export function webhookBody(approval: Approval, apiUrl: string): string {
  const base = `${apiUrl.replace(/\/$/, '')}/v1/approvals/${approval.id}`;
  return JSON.stringify({
    type: 'approval.requested',
    approval: {
      id: approval.id,
      identity: approval.identity,
      connection: approval.connection,
      sessionId: approval.sessionId,
      statement: approval.statement,
      policy: approval.policy,
      rule: approval.rule,
      reason: approval.reason,
      approverGroups: approval.approverGroups,
      mode: approval.mode,
      requestedAt: approval.requestedAt.toISOString(),
      expiresAt: approval.expiresAt.toISOString(),
    },
    links: { self: base, approve: `${base}/approve`, deny: `${base}/deny` },
  });
}

/** POSTs the approval to `url`, retrying with exponential backoff on network errors and non-2xx answers. */
export async function sendWebhook(url: string, approval: Approval, opts: WebhookOptions, log: Logger): Promise<WebhookOutcome> {
  const body = webhookBody(approval, opts.apiUrl);
  const headers = {
    'content-type': 'application/json',
    [WEBHOOK_SIGNATURE_HEADER]: webhookSignature(body, opts.key),
    'X-Portcullis-Delivery': approval.id,
    'user-agent': 'portcullis-approvals',
  };
  let lastError = 'not attempted';
  const backoff = opts.backoffMs ?? 250;
  for (let attempt = 1; attempt <= opts.attempts; attempt++) {
    try {
      const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(opts.timeoutMs), redirect: 'manual' });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return { ok: true, status: res.status, attempts: attempt };
      lastError = `http ${res.status}`;
      // 4xx other than 408/429 will not get better by retrying
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) break;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    log.warn({ approvalId: approval.id, attempt, error: lastError }, 'approval webhook failed');
    if (attempt < opts.attempts) await new Promise((r) => setTimeout(r, backoff * 2 ** (attempt - 1)));
  }
  return { ok: false, error: lastError, attempts: opts.attempts };
}
