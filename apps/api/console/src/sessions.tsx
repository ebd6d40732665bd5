import { useEffect, useState } from 'preact/hooks';
import { api, hasRole, type Me } from './api';
import { time } from './format';
import { navigate } from './router';

export interface SessionView {
  id: string;
  identity: string;
  connection: string;
  gateway: string;
  pool: string | null;
  clientAddr: string | null;
  startedAt: string;
  endedAt: string | null;
  events: number;
}

const MARKS = [
  ['block', 'had a block'],
  ['approval', 'had an approval'],
  ['masking', 'had masking'],
] as const;

export function Sessions({ me, search }: { me: Me; search: string }) {
  const params = new URLSearchParams(search);
  const [form, setForm] = useState({
    identity: params.get('identity') ?? '',
    connection: params.get('connection') ?? '',
    protocol: params.get('protocol') ?? '',
    since: params.get('since') ?? '',
    had: new Set((params.get('had') ?? '').split(',').filter(Boolean)),
  });
  const [rows, setRows] = useState<SessionView[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const q = new URLSearchParams(search);
    q.set('limit', '200');
    api<SessionView[]>('GET', `/v1/sessions?${q}`).then(setRows, (e: Error) => setError(e.message));
  }, [search]);

  const apply = (e: Event) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (form.identity) q.set('identity', form.identity);
    if (form.connection) q.set('connection', form.connection);
    if (form.protocol) q.set('protocol', form.protocol);
    if (form.since) q.set('since', new Date(form.since).toISOString());
    if (form.had.size) q.set('had', [...form.had].join(','));
    navigate(`/console/sessions${q.size ? `?${q}` : ''}`);
  };
  const set = (k: 'identity' | 'connection' | 'protocol' | 'since') => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value });

  return (
    <section>
      <h1>Sessions</h1>
      {!hasRole(me, 'auditor') && <p class="hint">You see your own sessions.</p>}
      <form class="filters" onSubmit={apply}>
        <input placeholder="identity" aria-label="identity" value={form.identity} onInput={set('identity')} />
        <input placeholder="connection" aria-label="connection" value={form.connection} onInput={set('connection')} />
        <select aria-label="protocol" value={form.protocol} onChange={set('protocol')}>
          <option value="">any protocol</option>
          <option value="postgres">postgres</option>
          <option value="ssh">ssh</option>
          <option value="kubernetes">kubernetes</option>
        </select>
        <label>
          since <input type="datetime-local" value={form.since} onInput={set('since')} />
        </label>
        {MARKS.map(([m, label]) => (
          <label key={m}>
            <input
              type="checkbox"
              checked={form.had.has(m)}
              onChange={(e) => {
                const had = new Set(form.had);
                if ((e.target as HTMLInputElement).checked) had.add(m);
                else had.delete(m);
                setForm({ ...form, had });
              }}
            />
            {label}
          </label>
        ))}
        <button type="submit">Filter</button>
      </form>
      {error && <p class="error">{error}</p>}
      {rows && rows.length === 0 && <p class="empty">No sessions match.</p>}
      {rows && rows.length > 0 && (
        <table class="sessions">
          <thead>
            <tr>
              <th>Started</th>
              <th>Identity</th>
              <th>Connection</th>
              <th>Gateway</th>
              <th>Events</th>
              <th>Ended</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((s) => (
              <tr key={s.id}>
                <td>
                  <a href={`/console/sessions/${encodeURIComponent(s.id)}`}>{time(s.startedAt)}</a>
                </td>
                <td>{s.identity}</td>
                <td>{s.connection}</td>
                <td>{s.gateway}</td>
                <td>{s.events}</td>
                <td>{s.endedAt ? time(s.endedAt) : <span class="live-badge">live</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
