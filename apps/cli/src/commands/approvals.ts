import { asList } from '../api-client.js';
import { allowOnly, boolFlag, stringFlag, UsageError, type ParsedArgs } from '../args.js';
import { authedClient, EXIT, println, type CliContext } from '../context.js';
import { shortTime, table } from '../output.js';

interface Approval {
  id: string;
  status: string;
  identity: string;
  connection: string;
  statement: string;
  rule: string;
  reason?: string | null;
  requestedAt?: string;
  expiresAt?: string;
  decidedBy?: string | null;
  comment?: string | null;
  consequence?: { rowsAffected: number; threshold: number | null; rule: string | null; tables: string[]; sample: { columns: string[]; rows: (string | null)[][]; note?: string } | null } | null;
}

const USAGE = 'usage: portcullis approvals list [--status pending|approved|denied|expired|all] [--json] | show <id> | approve <id> [--comment text] | deny <id> [--comment text]';

export async function approvals(ctx: CliContext, args: ParsedArgs): Promise<number> {
  const [sub, id, ...extra] = args.positionals;
  if (extra.length > 0) throw new UsageError(USAGE);
  const api = authedClient(ctx);
  switch (sub) {
    case 'list':
    case undefined: {
      allowOnly(args, ['status', 'json']);
      const status = stringFlag(args, 'status') ?? 'pending';
      const query = status === 'all' ? '' : `?status=${encodeURIComponent(status)}`;
      const list = asList<Approval>(await api.json('GET', `/v1/approvals${query}`));
      if (boolFlag(args, 'json')) {
        println(ctx.stdout, JSON.stringify(list, null, 2));
      } else if (list.length === 0) {
        println(ctx.stdout, status === 'all' ? 'No approvals.' : `No ${status} approvals.`);
      } else {
        println(ctx.stdout, table(list.map((a) => ({ ...a, requestedAt: shortTime(a.requestedAt), expiresAt: shortTime(a.expiresAt) })), [
          { key: 'id', title: 'ID' },
          { key: 'status', title: 'STATUS' },
          { key: 'identity', title: 'WHO' },
          { key: 'connection', title: 'CONNECTION' },
          { key: 'rule', title: 'RULE' },
          { key: 'requestedAt', title: 'REQUESTED' },
          { key: 'expiresAt', title: 'EXPIRES' },
          { key: 'statement', title: 'STATEMENT', max: 60 },
        ]));
      }
      return EXIT.ok;
    }
    case 'show': {
      allowOnly(args, ['json']);
      if (!id) throw new UsageError(USAGE);
      const a = await api.json<Approval>('GET', `/v1/approvals/${encodeURIComponent(id)}`);
      if (boolFlag(args, 'json')) {
        println(ctx.stdout, JSON.stringify(a, null, 2));
      } else {
        for (const [k, v] of Object.entries(a)) {
          if (v !== null && v !== undefined && k !== 'consequence') println(ctx.stdout, `${k.padEnd(14)} ${typeof v === 'string' ? v : JSON.stringify(v)}`);
        }
        const c = a.consequence;
        if (c) {
          const over = c.threshold !== null ? ` (over ${c.threshold}, rule ${c.rule})` : '';
          println(ctx.stdout, `${'consequence'.padEnd(14)} would change ${c.rowsAffected} row${c.rowsAffected === 1 ? '' : 's'}${c.tables.length ? ` of ${c.tables.join(', ')}` : ''}${over}`);
          if (c.sample && c.sample.columns.length) {
            println(ctx.stdout, `sample (first ${c.sample.rows.length}, masked):`);
            println(ctx.stdout, table(c.sample.rows.map((r) => Object.fromEntries(c.sample!.columns.map((col, i) => [String(i), r[i] ?? 'NULL']))), c.sample.columns.map((col, i) => ({ key: String(i), title: col, max: 40 }))));
          }
          if (c.sample?.note) println(ctx.stdout, c.sample.note);
        }
      }
      return EXIT.ok;
    }
    case 'approve':
    case 'deny': {
      allowOnly(args, ['comment', 'json']);
      if (!id) throw new UsageError(USAGE);
      const comment = stringFlag(args, 'comment');
      const a = await api.json<Partial<Approval>>('POST', `/v1/approvals/${encodeURIComponent(id)}/${sub}`, comment ? { comment } : {});
      if (boolFlag(args, 'json')) println(ctx.stdout, JSON.stringify(a, null, 2));
      else println(ctx.stdout, `${sub === 'approve' ? 'Approved' : 'Denied'} ${id}${a?.statement ? `: ${a.statement.replace(/\s+/g, ' ').slice(0, 80)}` : ''}`);
      return EXIT.ok;
    }
    default:
      throw new UsageError(USAGE);
  }
}
