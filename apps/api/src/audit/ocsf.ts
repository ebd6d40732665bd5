import { CONTROL_CHAIN, type RecordedEvent } from '@portcullis/protocol';

/**
 * OCSF 1.1 mapping of recorded events:
 * - session.start / session.end → Authentication (3002) Logon / Logoff
 * - query, result, decision, approvals → Datastore Activity (6005): Query, or Other
 * - control-plane changes → API Activity (6003): Create / Read / Update / Delete / Other
 * Everything Portcullis-specific (chain position, hashes, the event as recorded) is under `unmapped`.
 */
export const OCSF_VERSION = '1.1.0';
const PRODUCT = { name: 'Portcullis', vendor_name: 'Portcullis', version: '0.1.0' };

const SEVERITY = { 1: 'Informational', 2: 'Low', 3: 'Medium', 4: 'High' } as const;
type SeverityId = keyof typeof SEVERITY;

interface ClassInfo {
  class_uid: number;
  class_name: string;
  category_uid: number;
  category_name: string;
  activity_id: number;
  activity_name: string;
}

const AUTH = { class_uid: 3002, class_name: 'Authentication', category_uid: 3, category_name: 'Identity & Access Management' };
const DATASTORE = { class_uid: 6005, class_name: 'Datastore Activity', category_uid: 6, category_name: 'Application Activity' };
const API = { class_uid: 6003, class_name: 'API Activity', category_uid: 6, category_name: 'Application Activity' };

const API_ACTIVITIES: Record<string, [number, string]> = {
  create: [1, 'Create'], read: [2, 'Read'], update: [3, 'Update'], delete: [4, 'Delete'],
  issue: [1, 'Create'], revoke: [4, 'Delete'], approve: [3, 'Update'], deny: [3, 'Update'],
};

/**
 * A `statement` event is a simple-protocol statement's query, decision and result in one (its data
 * holds their members under the same names), so it is read as each of them.
 */
const DECISION_TYPES: ReadonlySet<string> = new Set(['decision', 'statement', 'command', 'file', 'kube.request']);
/** `command` (SSH/K8s command or shell line), `file` (SFTP/SCP) and `kube.request` events carry decision data as `decision` does. */
export const carriesDecision = (e: RecordedEvent): boolean => DECISION_TYPES.has(e.type);
export const carriesResult = (e: RecordedEvent): boolean => e.type === 'result' || e.type === 'statement';

function classify(e: RecordedEvent): ClassInfo {
  switch (e.type) {
    case 'session.start':
      return { ...AUTH, activity_id: 1, activity_name: 'Logon' };
    case 'session.end':
      return { ...AUTH, activity_id: 2, activity_name: 'Logoff' };
    case 'auth.failed':
      return { ...AUTH, activity_id: 1, activity_name: 'Logon' };
    case 'query':
    case 'result':
    case 'statement':
      return { ...DATASTORE, activity_id: 4, activity_name: 'Query' };
    default:
      break;
  }
  if (e.sessionId !== null) return { ...DATASTORE, activity_id: 99, activity_name: e.type };
  const action = typeof e.data.action === 'string' ? e.data.action.toLowerCase() : '';
  const [id, name] = API_ACTIVITIES[action] ?? [99, e.type];
  return { ...API, activity_id: id, activity_name: name };
}

function severityOf(e: RecordedEvent): SeverityId {
  if (carriesDecision(e)) {
    if (e.data.action === 'block') return 4;
    if (e.data.action === 'require_approval') return 3;
  }
  if (carriesResult(e) && e.data.error) return 2;
  if (e.type === 'approval.decided' && e.data.status === 'denied') return 2;
  if (e.type === 'auth.failed') return 3;
  return 1;
}

function failed(e: RecordedEvent): boolean {
  return (carriesResult(e) && !!e.data.error) || (carriesDecision(e) && e.data.action === 'block') || e.type === 'auth.failed';
}

/** `host:port` or `[v6]:port` → ip and port, when it looks like one. */
function endpoint(addr: unknown): Record<string, unknown> | undefined {
  if (typeof addr !== 'string' || !addr) return undefined;
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(addr);
  return m ? { ip: m[1], port: Number(m[2]) } : { ip: addr };
}

export function toOcsf(e: RecordedEvent, position: bigint): Record<string, unknown> {
  const c = classify(e);
  const severity_id = severityOf(e);
  const out: Record<string, unknown> = {
    ...c,
    type_uid: c.class_uid * 100 + c.activity_id,
    time: Date.parse(e.time),
    severity_id,
    severity: SEVERITY[severity_id],
    status_id: failed(e) ? 2 : 1,
    status: failed(e) ? 'Failure' : 'Success',
    message: summary(e),
    metadata: {
      version: OCSF_VERSION,
      product: PRODUCT,
      uid: e.id,
      original_time: e.time,
      sequence: Number(position),
      log_name: e.sessionId ?? CONTROL_CHAIN,
      ...(e.sessionId ? { correlation_uid: e.sessionId } : {}),
    },
    actor: { user: { name: e.identity ?? 'unknown' }, ...(e.sessionId ? { session: { uid: e.sessionId } } : {}) },
    unmapped: { portcullis: e, position: position.toString() },
  };
  if (c.class_uid === 3002) {
    out.user = { name: e.identity ?? 'unknown' };
    out.service = { name: e.connection ?? undefined };
    out.is_mfa = false;
    const src = endpoint(e.data.clientAddr ?? e.data.source);
    if (src) out.src_endpoint = src;
    out.dst_endpoint = { name: e.gateway ?? undefined };
  } else if (c.class_uid === 6005) {
    out.database = { name: e.connection ?? undefined, type_id: 99, type: 'Postgres' };
    out.type_id = 1;
    out.type_name = 'Database';
    out.src_endpoint = { name: e.gateway ?? undefined };
    if (carriesDecision(e)) {
      out.disposition_id = e.data.action === 'block' ? 2 : 1;
      out.disposition = e.data.action === 'block' ? 'Blocked' : 'Allowed';
    }
    if (carriesResult(e) && typeof e.data.durationMs === 'number') out.duration = Math.round(e.data.durationMs);
  } else {
    out.api = { operation: e.type, service: { name: 'portcullis-api' } };
    out.src_endpoint = { name: 'portcullis-api' };
    if (typeof e.data.target === 'string') out.resources = [{ name: e.data.target, type: e.type.split('.')[0] }];
  }
  return out;
}

/** One human line per event (OCSF `message`, CEF `msg`). Never row data: results are counts (kept rows travel by reference). */
export function summary(e: RecordedEvent): string {
  const d = e.data;
  switch (e.type) {
    case 'session.start':
      return `${e.identity ?? '?'} connected to ${e.connection ?? '?'}`;
    case 'auth.failed':
      return `${String(d.surface ?? '?')} login refused (${String(d.reason ?? '?')}) for ${String(d.identity ?? '?')} from ${String(d.source ?? '?')}${Number(d.count) > 1 ? `, ${String(d.count)} times` : ''}`;
    case 'session.end':
      return `session ended (${String(d.reason ?? 'unknown')}) after ${String(d.statements ?? '?')} statements`;
    case 'query':
      return typeof d.sql === 'string' ? d.sql.slice(0, 500) : 'query';
    case 'decision':
      return `${String(d.action)} by ${String(d.rule ?? '?')}: ${String(d.reason ?? '')}`.trim();
    case 'result':
      return resultSummary(d);
    case 'statement':
      return `${typeof d.sql === 'string' ? d.sql.slice(0, 400) : 'statement'} → ${String(d.action)}${d.rule ? ` by ${String(d.rule)}` : ''}: ${resultSummary(d)}`;
    default:
      return typeof d.action === 'string' && typeof d.target === 'string' ? `${d.action} ${d.target}` : e.type;
  }
}

function resultSummary(d: Record<string, unknown>): string {
  return d.error ? `error ${String((d.error as { code?: unknown }).code ?? '')}` : `${String(d.tag ?? 'ok')} rows=${String(d.rows ?? '?')}`;
}
