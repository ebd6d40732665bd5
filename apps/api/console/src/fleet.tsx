import { useEffect, useState } from 'preact/hooks';
import { api, hasRole, type Me } from './api';
import { ago } from './format';

interface Gateway {
  id: string;
  pool: string;
  version: string;
  liveSessions: number;
  configRevision: number | null;
  lastHeartbeat: string;
  live: boolean;
}
interface Pool {
  name: string;
  revision: number;
  connections: number;
  gateways: number;
}
interface Connection {
  name: string;
  kind: string;
  pool: string;
  host: string;
  port: number;
  database: string;
  policy: string | null;
  recording: string;
  status: string;
  brokenReason: string | null;
}
interface Policy {
  name: string;
  version: number;
}

function DryRun({ policies }: { policies: Policy[] }) {
  const [policy, setPolicy] = useState(policies[0]?.name ?? '');
  const [command, setCommand] = useState('DELETE FROM customers');
  const [answer, setAnswer] = useState<{ decision?: { action?: string; rule?: string | null; reason?: string | null } } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      setAnswer(await api('POST', `/v1/policies/${encodeURIComponent(policy)}/evaluate`, { command }));
    } catch (err) {
      setAnswer(null);
      setError((err as Error).message);
    }
  };
  return (
    <form class="dry-run" onSubmit={run}>
      <h2>Policy dry run</h2>
      <select aria-label="policy" value={policy} onChange={(e) => setPolicy((e.target as HTMLSelectElement).value)}>
        {policies.map((p) => (
          <option key={p.name} value={p.name}>
            {p.name} (v{p.version})
          </option>
        ))}
      </select>
      <textarea aria-label="statement" rows={3} value={command} onInput={(e) => setCommand((e.target as HTMLTextAreaElement).value)} />
      <button type="submit">Evaluate</button>
      {error && <p class="error">{error}</p>}
      {answer?.decision && (
        <p class={`decision ${answer.decision.action}`} data-dry-run={answer.decision.action}>
          {answer.decision.action}
          {answer.decision.rule ? ` by rule ${answer.decision.rule}` : ''}
          {answer.decision.reason ? `: ${answer.decision.reason}` : ''}
        </p>
      )}
      {answer && <pre class="json">{JSON.stringify(answer, null, 2)}</pre>}
    </form>
  );
}

export function Fleet({ me }: { me: Me }) {
  const admin = hasRole(me, 'admin');
  const [gateways, setGateways] = useState<Gateway[]>([]);
  const [pools, setPools] = useState<Pool[]>([]);
  const [connections, setConnections] = useState<Connection[]>([]);
  const [policies, setPolicies] = useState<Policy[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const fail = (e: Error) => setError(e.message);
    api<Connection[]>('GET', '/v1/connections').then(setConnections, fail);
    if (!admin) return;
    const load = () => api<Gateway[]>('GET', '/v1/gateways').then(setGateways, fail);
    void load();
    api<Pool[]>('GET', '/v1/gateway-pools').then(setPools, () => undefined);
    api<Policy[]>('GET', '/v1/policies').then(setPolicies, fail);
    const t = setInterval(load, 5000);
    return () => clearInterval(t);
  }, [admin]);
  return (
    <section>
      <h1>Fleet and config</h1>
      {error && <p class="error">{error}</p>}
      {admin ? (
        <>
          <h2>Gateways</h2>
          <table>
            <thead>
              <tr>
                <th>Pool</th>
                <th>Gateway</th>
                <th>Status</th>
                <th>Last seen</th>
                <th>Config revision</th>
                <th>Live sessions</th>
                <th>Version</th>
              </tr>
            </thead>
            <tbody>
              {gateways.map((g) => {
                const pool = pools.find((p) => p.name === g.pool);
                return (
                  <tr key={g.id}>
                    <td>{g.pool}</td>
                    <td>{g.id}</td>
                    <td>{g.live ? <span class="badge ok">live</span> : <span class="badge broken">gone</span>}</td>
                    <td>{ago(g.lastHeartbeat)} ago</td>
                    <td>
                      {g.configRevision ?? '—'}
                      {pool && g.configRevision !== null && g.configRevision < pool.revision ? ` (pool is at ${pool.revision})` : ''}
                    </td>
                    <td>{g.liveSessions}</td>
                    <td>{g.version}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </>
      ) : (
        <p class="hint">The fleet and policies are for admins; you see the connections you may use.</p>
      )}
      <h2>Connections</h2>
      <table>
        <thead>
          <tr>
            <th>Name</th>
            <th>Type</th>
            <th>Pool</th>
            <th>Target</th>
            <th>Policy</th>
            <th>Recording</th>
            <th>Status</th>
          </tr>
        </thead>
        <tbody>
          {connections.map((c) => (
            <tr key={c.name}>
              <td>{c.name}</td>
              <td>{c.kind}</td>
              <td>{c.pool}</td>
              <td>
                {c.host}:{c.port}
                {c.database ? `/${c.database}` : ''}
              </td>
              <td>{c.policy ?? '—'}</td>
              <td>{c.recording}</td>
              <td title={c.brokenReason ?? ''}>{c.status}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {admin && policies.length > 0 && (
        <>
          <h2>Policies</h2>
          <ul>
            {policies.map((p) => (
              <li key={p.name}>
                {p.name} — version {p.version}, used by {connections.filter((c) => c.policy === p.name).map((c) => c.name).join(', ') || 'no connection'}
              </li>
            ))}
          </ul>
          <DryRun policies={policies} />
        </>
      )}
    </section>
  );
}
