import { asList } from '../api-client.js';
import { allowOnly, boolFlag, UsageError, type ParsedArgs } from '../args.js';
import { authedClient, EXIT, println, type CliContext } from '../context.js';
import { shortTime, table } from '../output.js';

interface SessionView {
  id: string;
  identity: string;
  connection: string;
  gateway: string;
  startedAt: string;
  endedAt?: string | null;
  events?: number;
}

interface EventView {
  seq: number;
  time: string;
  type: string;
  data?: Record<string, unknown>;
}

interface Verify {
  valid: boolean;
  events: number;
  brokenAt: number | null;
}

const USAGE = 'usage: portcullis sessions list [--json] | show <id> [--json] | verify <id> [--json]';

/** One line per event for replay: what was asked, what was decided, what came back. */
export function describeEvent(e: EventView): string {
  const d = e.data ?? {};
  const s = (v: unknown): string => (typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v));
  switch (e.type) {
    case 'session.start':
      return `user=${s(d.user)} database=${s(d.database)} from=${s(d.clientAddr)} policy=${s(d.policy)} tls=${s(d.tls)}`;
    case 'query':
      return s(d.sql).replace(/\s+/g, ' ');
    case 'decision':
      return `${s(d.action)}${d.rule ? ` by ${s(d.rule)}` : ''}${d.reason ? `: ${s(d.reason)}` : ''}`;
    case 'result':
      return describeResult(d, s);
    // one simple-protocol statement: its query, decision and result in one event
    case 'statement':
      return `${s(d.sql).replace(/\s+/g, ' ')} → ${s(d.action)}${d.rule ? ` by ${s(d.rule)}` : ''}: ${describeResult(d, s)}`;
    case 'approval.requested':
      return `approval ${s(d.approvalId)} requested by rule ${s(d.rule)}`;
    case 'approval.decided':
      return `approval ${s(d.approvalId)} ${s(d.status)} by ${s(d.decidedBy)}${d.comment ? `: ${s(d.comment)}` : ''}`;
    case 'session.end':
      return `${s(d.reason)} after ${s(d.durationMs)}ms, ${s(d.statements)} statements`;
    default:
      return JSON.stringify(d);
  }
}

function describeResult(d: Record<string, unknown>, s: (v: unknown) => string): string {
  const err = d.error as { code?: string; message?: string } | undefined;
  const masking = d.masking as { columns?: string[]; values?: number } | undefined;
  return err
    ? `error ${err.code ?? ''} ${err.message ?? ''}`.trim()
    : `${s(d.tag) || 'ok'} rows=${s(d.rows)} ${s(d.durationMs)}ms${masking?.values ? ` masked=${masking.values} in ${(masking.columns ?? []).join(',')}` : ''}`;
}

export async function sessions(ctx: CliContext, args: ParsedArgs): Promise<number> {
  const [sub, id, ...extra] = args.positionals;
  if (extra.length > 0) throw new UsageError(USAGE);
  allowOnly(args, ['json']);
  const json = boolFlag(args, 'json');
  const api = authedClient(ctx);
  switch (sub) {
    case 'list':
    case undefined: {
      const list = asList<SessionView>(await api.json('GET', '/v1/sessions'));
      if (json) println(ctx.stdout, JSON.stringify(list, null, 2));
      else if (list.length === 0) println(ctx.stdout, 'No sessions recorded yet.');
      else {
        println(ctx.stdout, table(list.map((x) => ({ ...x, startedAt: shortTime(x.startedAt), endedAt: x.endedAt ? shortTime(x.endedAt) : 'live' })), [
          { key: 'id', title: 'ID' },
          { key: 'identity', title: 'WHO' },
          { key: 'connection', title: 'CONNECTION' },
          { key: 'gateway', title: 'GATEWAY' },
          { key: 'startedAt', title: 'STARTED' },
          { key: 'endedAt', title: 'ENDED' },
          { key: 'events', title: 'EVENTS' },
        ]));
      }
      return EXIT.ok;
    }
    case 'show': {
      if (!id) throw new UsageError(USAGE);
      const path = `/v1/sessions/${encodeURIComponent(id)}`;
      const [session, events] = await Promise.all([api.json<SessionView>('GET', path), api.json<unknown>('GET', `${path}/events`)]);
      const list = asList<EventView>(events);
      if (json) {
        println(ctx.stdout, JSON.stringify({ session, events: list }, null, 2));
        return EXIT.ok;
      }
      println(ctx.stdout, `session ${session.id}: ${session.identity} → ${session.connection} via ${session.gateway}, ${shortTime(session.startedAt)} – ${session.endedAt ? shortTime(session.endedAt) : 'live'}`);
      for (const e of list) println(ctx.stdout, `${String(e.seq).padStart(4)}  ${shortTime(e.time)}  ${e.type.padEnd(18)} ${describeEvent(e)}`);
      return EXIT.ok;
    }
    case 'verify': {
      if (!id) throw new UsageError(USAGE);
      const v = await api.json<Verify>('GET', `/v1/sessions/${encodeURIComponent(id)}/verify`);
      if (json) println(ctx.stdout, JSON.stringify(v, null, 2));
      else if (v.valid) println(ctx.stdout, `session ${id}: hash chain intact over ${v.events} events`);
      else println(ctx.stdout, `session ${id}: hash chain BROKEN at event ${v.brokenAt ?? '?'} (of ${v.events})`);
      return v.valid ? EXIT.ok : EXIT.invalid;
    }
    default:
      throw new UsageError(USAGE);
  }
}
