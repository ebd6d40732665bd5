import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, type Me } from './api';
import { ago, time, until } from './format';

interface Approval {
  id: string;
  status: string;
  identity: string;
  connection: string;
  sessionId: string;
  statement: string;
  policy: string | null;
  rule: string;
  reason: string | null;
  approverGroups: string[];
  requestedAt: string;
  expiresAt: string;
}

interface AccessRequest {
  id: string;
  identity: string;
  connection: string;
  reason: string;
  durationSeconds: number;
  status: string;
  decidedBy: string | null;
  grantedUntil: string | null;
  createdAt: string;
}

/** Polled this often (the issue asks for ≤ 2 s). */
const POLL_MS = 1000;

function approvalBlocker(me: Me, a: Approval): string | null {
  if (a.identity === me.subject) return 'You requested this: someone else must decide it (four-eyes).';
  if (!me.roles.includes('admin') && !a.approverGroups.some((g) => me.groups.includes(g))) {
    return a.approverGroups.length ? `Only members of ${a.approverGroups.join(', ')} can decide this.` : 'Only an admin can decide this (the policy names no approver groups).';
  }
  return null;
}

/**
 * Who may grant access is the connection policy's approver groups (or admins): the request does not
 * say which, so only four-eyes is known here; the API's answer to anyone else is shown under the buttons.
 */
function accessBlocker(me: Me, r: AccessRequest): string | null {
  if (r.identity === me.subject) return 'You requested this: someone else must decide it (four-eyes).';
  return null;
}

function Decide(props: { blocker: string | null; onDecide: (verb: 'approve' | 'deny', comment: string) => Promise<void>; label: string }) {
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const go = async (verb: 'approve' | 'deny') => {
    setBusy(true);
    setError(null);
    try {
      await props.onDecide(verb, comment);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  const disabled = busy || props.blocker !== null;
  return (
    <div class="decide">
      <input class="comment" placeholder="Comment (kept with the decision)" aria-label={`comment for ${props.label}`} value={comment} disabled={disabled} onInput={(e) => setComment((e.target as HTMLInputElement).value)} />
      <button class="approve" disabled={disabled} title={props.blocker ?? ''} onClick={() => go('approve')}>Approve</button>
      <button class="deny" disabled={disabled} title={props.blocker ?? ''} onClick={() => go('deny')}>Deny</button>
      {props.blocker && <p class="why">{props.blocker}</p>}
      {error && <p class="error" role="alert">{error}</p>}
    </div>
  );
}

/** Ends a running grant now (POST /v1/access-requests/{id}/revoke): its sessions end, its credentials stop working. */
function Revoke(props: { label: string; onRevoke: (reason: string) => Promise<void> }) {
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      await props.onRevoke(reason);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="decide">
      <input class="comment" placeholder="Reason (kept with the revocation)" aria-label={`reason for revoking ${props.label}`} value={reason} disabled={busy} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
      <button class="deny revoke" disabled={busy} onClick={() => go()}>Revoke now</button>
      {error && <p class="error" role="alert">{error}</p>}
    </div>
  );
}

export function Inbox({ me }: { me: Me }) {
  const [approvals, setApprovals] = useState<Approval[] | null>(null);
  const [access, setAccess] = useState<AccessRequest[]>([]);
  const [grants, setGrants] = useState<AccessRequest[]>([]);
  const [updated, setUpdated] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string[]>([]);
  const [, tick] = useState(0);

  const load = async () => {
    try {
      const [a, r, g] = await Promise.all([
        api<Approval[]>('GET', '/v1/approvals?status=pending&limit=200'),
        api<AccessRequest[]>('GET', '/v1/access-requests?status=pending&limit=200').catch(() => [] as AccessRequest[]),
        api<AccessRequest[]>('GET', '/v1/access-requests?status=approved&limit=200').catch(() => [] as AccessRequest[]),
      ]);
      setApprovals(a);
      setAccess(r);
      setGrants(g);
      setUpdated(Date.now());
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };

  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout>;
    const loop = async () => {
      await load();
      if (!stop) timer = setTimeout(loop, POLL_MS);
    };
    void loop();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, []);
  useEffect(() => {
    const t = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, []);

  const decideApproval = async (a: Approval, verb: 'approve' | 'deny', comment: string) => {
    await api('POST', `/v1/approvals/${a.id}/${verb}`, comment ? { comment } : {});
    setDone((d) => [`${verb === 'approve' ? 'Approved' : 'Denied'}: ${a.statement.slice(0, 80)}`, ...d].slice(0, 5));
    await load();
  };
  const decideAccess = async (r: AccessRequest, verb: 'approve' | 'deny', comment: string) => {
    await api('POST', `/v1/access-requests/${r.id}/${verb}`, comment ? { comment } : {});
    setDone((d) => [`${verb === 'approve' ? 'Granted' : 'Refused'}: access to ${r.connection} for ${r.identity}`, ...d].slice(0, 5));
    await load();
  };
  const revokeGrant = async (r: AccessRequest, reason: string) => {
    await api('POST', `/v1/access-requests/${r.id}/revoke`, reason ? { reason } : {});
    setDone((d) => [`Revoked: access to ${r.connection} for ${r.identity}`, ...d].slice(0, 5));
    await load();
  };

  return (
    <section>
      <h1>Approvals inbox</h1>
      <p class="live">{error ? <span class="error">{error}</span> : updated ? `Live — updated ${ago(new Date(updated).toISOString())} ago` : 'Loading…'}</p>
      {done.map((d) => (
        <p class="notice" key={d}>{d}</p>
      ))}
      <h2>Held statements and commands</h2>
      {approvals && approvals.length === 0 && <p class="empty">Nothing is waiting for a decision.</p>}
      <ul class="cards">
        {(approvals ?? []).map((a) => (
          <li class="card approval" data-approval={a.id} key={a.id}>
            <pre class="sql">{a.statement}</pre>
            <dl>
              <dt>Requester</dt>
              <dd class="requester">{a.identity}</dd>
              <dt>Connection</dt>
              <dd>{a.connection}</dd>
              <dt>Rule</dt>
              <dd>
                <code>{a.rule}</code>
                {a.policy ? ` (policy ${a.policy})` : ''}
              </dd>
              <dt>Reason</dt>
              <dd>{a.reason ?? '—'}</dd>
              <dt>Waiting</dt>
              <dd class="waiting">{ago(a.requestedAt)}</dd>
              <dt>Expires</dt>
              <dd title={time(a.expiresAt)}>{until(a.expiresAt)}</dd>
            </dl>
            <Decide label={a.id} blocker={approvalBlocker(me, a)} onDecide={(v, c) => decideApproval(a, v, c)} />
          </li>
        ))}
      </ul>
      <h2>Access requests</h2>
      {access.length === 0 && <p class="empty">No access requests are waiting.</p>}
      <ul class="cards">
        {access.map((r) => (
          <li class="card access" data-access-request={r.id} key={r.id}>
            <p>
              <strong>{r.identity}</strong> asks for access to <strong>{r.connection}</strong> for {Math.round(r.durationSeconds / 60)} min
            </p>
            <p class="reason">{r.reason}</p>
            <dl>
              <dt>Waiting</dt>
              <dd>{ago(r.createdAt)}</dd>
            </dl>
            <Decide label={r.id} blocker={accessBlocker(me, r)} onDecide={(v, c) => decideAccess(r, v, c)} />
          </li>
        ))}
      </ul>
      <h2>Running grants</h2>
      {grants.length === 0 && <p class="empty">No access grant is running.</p>}
      <ul class="cards">
        {grants.map((r) => (
          <li class="card grant" data-access-grant={r.id} key={r.id}>
            <p>
              <strong>{r.identity}</strong> has access to <strong>{r.connection}</strong>
            </p>
            <p class="reason">{r.reason}</p>
            <dl>
              <dt>Granted by</dt>
              <dd>{r.decidedBy ?? '—'}</dd>
              <dt>Ends</dt>
              <dd title={r.grantedUntil ? time(r.grantedUntil) : ''}>{r.grantedUntil ? until(r.grantedUntil) : '—'}</dd>
            </dl>
            <Revoke label={r.id} onRevoke={(reason) => revokeGrant(r, reason)} />
          </li>
        ))}
      </ul>
    </section>
  );
}
