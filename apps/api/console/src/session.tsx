import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, CONSOLE_HEADERS, download } from './api';
import { time } from './format';
import type { SessionView } from './sessions';

type ColumnMasking = { by: 'rule'; rule: string; strategy: string } | { by: 'detectors'; detectors: { detector: string; rule: string; strategy: string }[] };
interface ReturnedSet {
  columns: { name: string; typeOid: number; format?: 'binary'; masking?: ColumnMasking }[];
  rows: (string | null)[][];
  masked: number[][];
  truncated?: boolean;
}
interface Result {
  seq: number;
  tag: string | null;
  rows: number | null;
  durationMs: number | null;
  error: { code: string; message: string } | null;
  masking: { columns: string[]; values: number } | null;
  returned: ReturnedSet[] | null;
}
type Item =
  | {
      kind: 'statement';
      seq: number;
      time: string;
      sql: string | null;
      protocol: string | null;
      decision: { action: string; rule: string | null; reason: string | null } | null;
      approval: { id: string | null; status: string; requestedAt: string; decidedBy: string | null; decidedAt: string | null; comment: string | null } | null;
      results: Result[];
    }
  | { kind: 'event'; seq: number; time: string; type: string; data: Record<string, unknown> };
interface Detail extends SessionView {
  protocol: string | null;
  timeline: Item[];
  next: number | null;
}
interface Verify {
  valid: boolean;
  events: number;
  brokenAt: number | null;
  reason: string | null;
}

const APPROVAL_WORDS: Record<string, string> = { pending: 'Waiting for approval', approved: 'Approved', denied: 'Denied', expired: 'Expired', cancelled: 'Cancelled' };

/** One line for the event kinds other protocols record (Kubernetes requests, file operations, terminal streams). */
function eventSummary(type: string, d: Record<string, unknown>): string {
  const v = (k: string) => (typeof d[k] === 'string' || typeof d[k] === 'number' ? String(d[k]) : '');
  const decided = v('action') ? ` → ${v('action')}${v('rule') ? ` by ${v('rule')}` : ''}` : '';
  if (type === 'kube.request') return ` ${v('verb')} ${[v('resource'), v('subresource')].filter(Boolean).join('/') || v('path')}${v('name') ? ` ${v('name')}` : ''}${v('namespace') ? ` in ${v('namespace')}` : ''}${decided}`;
  if (type === 'file') return ` ${v('op') || v('operation')} ${v('path')}${decided}`;
  if (type === 'terminal') return ` stream ${v('stream')} ${v('event') === 'start' ? 'started' : 'ended'}${v('command') ? `: ${v('command')}` : ''}`;
  return '';
}

function maskingText(m: ColumnMasking): string {
  return m.by === 'rule' ? `masked by rule ${m.rule} (${m.strategy})` : `scanned by ${m.detectors.map((d) => `${d.detector} (rule ${d.rule}, ${d.strategy})`).join(', ')}`;
}

function Rows({ set }: { set: ReturnedSet }) {
  return (
    <div class="returned">
      <table class="rows">
        <thead>
          <tr>
            {set.columns.map((c) => (
              <th key={c.name} title={c.masking ? maskingText(c.masking) : 'not masked'} class={c.masking ? 'masked-column' : ''}>
                {c.name}
                {c.masking && <span class="mask-note"> ({c.masking.by === 'rule' ? `rule ${c.masking.rule}` : 'detectors'})</span>}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {set.rows.map((row, i) => (
            <tr key={i}>
              {row.map((v, j) => {
                const masked = set.masked[i]?.includes(j);
                const m = set.columns[j]?.masking;
                return (
                  <td key={j} class={masked ? 'masked' : ''} title={masked && m ? maskingText(m) : undefined} data-masked={masked ? 'true' : undefined}>
                    {v === null ? <span class="null">NULL</span> : v}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
      {set.truncated && <p class="hint">More rows were returned than the policy keeps.</p>}
    </div>
  );
}

function Statement({ s, broken }: { s: Extract<Item, { kind: 'statement' }>; broken: boolean }) {
  const action = s.decision?.action ?? 'unknown';
  return (
    <li class={`statement action-${action}${broken ? ' broken' : ''}`} data-seq={s.seq}>
      {broken && <p class="breaks-here">The hash chain breaks here: this statement's record was changed or removed after it was written.</p>}
      <div class="head">
        <span class="seq">#{s.seq}</span> <span class="when">{time(s.time)}</span>
        {s.protocol && <span class="protocol">{s.protocol}</span>}
        <span class={`decision ${action}`}>{action.replace('_', ' ')}</span>
        {s.decision?.rule && (
          <span class="rule">
            by rule <code>{s.decision.rule}</code>
          </span>
        )}
      </div>
      <pre class="sql">{s.sql ?? '(no text)'}</pre>
      {s.decision?.reason && <p class="reason">{s.decision.reason}</p>}
      {s.approval && (
        <p class={`approval ${s.approval.status}`}>
          {APPROVAL_WORDS[s.approval.status] ?? `Approval ${s.approval.status}`}
          {s.approval.decidedBy ? ` by ${s.approval.decidedBy}` : ''}
          {s.approval.decidedAt ? ` at ${time(s.approval.decidedAt)}` : ''} (requested {time(s.approval.requestedAt)})
          {s.approval.comment ? <span class="comment"> — “{s.approval.comment}”</span> : ''}
        </p>
      )}
      {s.results.map((r) => (
        <div class="result" key={r.seq}>
          <p class="summary">
            {r.error ? (
              <span class="error">
                error {r.error.code}: {r.error.message}
              </span>
            ) : (
              <span>
                {r.tag ?? 'done'} — {r.rows ?? 0} row(s)
                {r.durationMs !== null ? `, ${r.durationMs.toFixed(1)} ms` : ''}
              </span>
            )}
            {r.masking && (
              <span class="masking-summary">
                {' '}
                · {r.masking.values} value(s) masked in {r.masking.columns.join(', ')}
              </span>
            )}
          </p>
          {r.returned?.map((set, i) => <Rows set={set} key={i} />)}
        </div>
      ))}
    </li>
  );
}

function Recording({ id }: { id: string }) {
  const el = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let player: { dispose(): void } | null = null;
    let gone = false;
    void (async () => {
      try {
        const [{ create }] = await Promise.all([import('asciinema-player'), import('asciinema-player/dist/bundle/asciinema-player.css')]);
        if (gone || !el.current) return;
        player = create({ url: `/v1/sessions/${encodeURIComponent(id)}/recording.cast`, fetchOpts: { credentials: 'same-origin', headers: CONSOLE_HEADERS } }, el.current, { fit: 'width' });
      } catch (e) {
        setError(e instanceof Error ? e.message : String(e));
      }
    })();
    return () => {
      gone = true;
      player?.dispose();
    };
  }, [id]);
  return (
    <div class="recording">
      <h2>Terminal recording</h2>
      {error && <p class="error">{error}</p>}
      <div ref={el} />
    </div>
  );
}

export function Session({ id }: { id: string }) {
  const [detail, setDetail] = useState<Detail | null>(null);
  const [verify, setVerify] = useState<Verify | null>(null);
  const [error, setError] = useState<ApiError | Error | null>(null);

  useEffect(() => {
    setDetail(null);
    setError(null);
    api<Detail>('GET', `/v1/sessions/${encodeURIComponent(id)}`).then(setDetail, setError);
    api<Verify>('GET', `/v1/sessions/${encodeURIComponent(id)}/verify`).then(setVerify, () => setVerify(null));
  }, [id]);

  if (error) {
    if (error instanceof ApiError && error.status === 404) {
      return (
        <section class="not-found">
          <h1>Session not found</h1>
          <p>
            There is no session <code>{id}</code> that you can see: it does not exist, or it is not yours.
          </p>
          <p>
            <a href="/console/sessions">Back to the sessions</a>
          </p>
        </section>
      );
    }
    return (
      <section>
        <h1>Session</h1>
        <p class="error">{error.message}</p>
      </section>
    );
  }
  if (!detail) return <p>Loading…</p>;
  const terminal = detail.protocol === 'ssh' || detail.protocol === 'kubernetes' || detail.timeline.some((i) => i.kind === 'event' && i.type === 'terminal');
  return (
    <section>
      <h1>Session {detail.id}</h1>
      <dl class="session-info">
        <dt>Identity</dt>
        <dd>{detail.identity}</dd>
        <dt>Connection</dt>
        <dd>
          {detail.connection}
          {detail.protocol ? ` (${detail.protocol})` : ''}
        </dd>
        <dt>Gateway</dt>
        <dd>{detail.gateway}</dd>
        <dt>Client</dt>
        <dd>{detail.clientAddr ?? '—'}</dd>
        <dt>Started</dt>
        <dd>{time(detail.startedAt)}</dd>
        <dt>Ended</dt>
        <dd>{detail.endedAt ? time(detail.endedAt) : 'still open'}</dd>
      </dl>
      <p>
        {verify === null ? (
          <span class="badge pending">checking the hash chain…</span>
        ) : verify.valid ? (
          <span class="badge ok" data-verify="ok">
            hash chain intact — {verify.events.toLocaleString('en-US')} events
          </span>
        ) : (
          <span class="badge broken" data-verify="broken">
            hash chain broken at event #{verify.brokenAt}: {verify.reason}
          </span>
        )}{' '}
        <button class="download" onClick={() => download(`/v1/sessions/${encodeURIComponent(id)}/events.jsonl`, `session-${id}.jsonl`).catch((e: Error) => setError(e))}>
          Download JSONL
        </button>
      </p>
      {terminal && <Recording id={detail.id} />}
      <h2>Timeline</h2>
      <ol class="timeline">
        {detail.timeline.map((i, n) => {
          // the item whose events include the first one that does not check out
          const next = detail.timeline[n + 1]?.seq ?? Infinity;
          const broken = verify !== null && verify.brokenAt !== null && verify.brokenAt >= i.seq && verify.brokenAt < next;
          return i.kind === 'statement' ? (
            <Statement s={i} key={i.seq} broken={broken} />
          ) : (
            <li class={`event${broken ? ' broken' : ''}`} key={i.seq}>
              <span class="seq">#{i.seq}</span> <span class="when">{time(i.time)}</span> <strong>{i.type}</strong>{' '}
              {i.type === 'session.end' && typeof i.data.reason === 'string' ? `(${i.data.reason})` : ''}
              {i.type === 'session.start' && typeof i.data.applicationName === 'string' ? `(${i.data.applicationName})` : ''}
              {eventSummary(i.type, i.data)}
              {broken && <p class="breaks-here">The hash chain breaks here.</p>}
            </li>
          );
        })}
      </ol>
      {detail.next !== null && <p class="hint">The timeline goes on (events after #{detail.next}); download the JSONL for all of it.</p>}
    </section>
  );
}
