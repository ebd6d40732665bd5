import { asList } from '../api-client.js';
import { allowOnly, boolFlag, stringFlag, UsageError, type ParsedArgs } from '../args.js';
import { authedClient, EXIT, println, type CliContext } from '../context.js';
import { shortTime, table } from '../output.js';

interface AccessRequest {
  id: string;
  identity: string;
  connection: string;
  reason: string;
  durationSeconds: number;
  status: string;
  active: boolean;
  decidedBy: string | null;
  decidedAt: string | null;
  comment: string | null;
  grantedUntil: string | null;
  revokedBy?: string | null;
  revokedAt?: string | null;
  revokeReason?: string | null;
  createdAt: string;
}

const USAGE =
  'usage: portcullis access-requests list [--status pending|approved|denied|expired|revoked|all] [--connection <name>] [--json] | show <id> | ' +
  'request <connection> --duration <seconds> --reason <text> | approve <id> [--comment text] | deny <id> [--comment text] | revoke <id> [--reason text]';

/** Time-boxed access to a connection: ask, decide, and end a grant early (`revoke`). */
export async function accessRequests(ctx: CliContext, args: ParsedArgs): Promise<number> {
  const [sub, id, ...extra] = args.positionals;
  if (extra.length > 0) throw new UsageError(USAGE);
  const api = authedClient(ctx);
  const show = (r: AccessRequest, line: string): void => {
    if (boolFlag(args, 'json')) println(ctx.stdout, JSON.stringify(r, null, 2));
    else println(ctx.stdout, line);
  };
  switch (sub) {
    case 'list':
    case undefined: {
      allowOnly(args, ['status', 'connection', 'json']);
      const status = stringFlag(args, 'status') ?? 'all';
      const connection = stringFlag(args, 'connection');
      const q = new URLSearchParams({ ...(status !== 'all' ? { status } : {}), ...(connection ? { connection } : {}) }).toString();
      const list = asList<AccessRequest>(await api.json('GET', `/v1/access-requests${q ? `?${q}` : ''}`));
      if (boolFlag(args, 'json')) {
        println(ctx.stdout, JSON.stringify(list, null, 2));
      } else if (list.length === 0) {
        println(ctx.stdout, status === 'all' ? 'No access requests.' : `No ${status} access requests.`);
      } else {
        println(ctx.stdout, table(list.map((r) => ({ ...r, duration: `${Math.round(r.durationSeconds / 60)} min`, createdAt: shortTime(r.createdAt), grantedUntil: shortTime(r.grantedUntil) })), [
          { key: 'id', title: 'ID' },
          { key: 'status', title: 'STATUS' },
          { key: 'identity', title: 'WHO' },
          { key: 'connection', title: 'CONNECTION' },
          { key: 'duration', title: 'FOR' },
          { key: 'createdAt', title: 'ASKED' },
          { key: 'grantedUntil', title: 'UNTIL' },
          { key: 'reason', title: 'REASON', max: 50 },
        ]));
      }
      return EXIT.ok;
    }
    case 'show': {
      allowOnly(args, ['json']);
      if (!id) throw new UsageError(USAGE);
      const r = await api.json<AccessRequest>('GET', `/v1/access-requests/${encodeURIComponent(id)}`);
      if (boolFlag(args, 'json')) println(ctx.stdout, JSON.stringify(r, null, 2));
      else for (const [k, v] of Object.entries(r)) if (v !== null && v !== undefined) println(ctx.stdout, `${k.padEnd(16)} ${typeof v === 'string' ? v : JSON.stringify(v)}`);
      return EXIT.ok;
    }
    case 'request': {
      allowOnly(args, ['duration', 'reason', 'json']);
      const duration = Number(stringFlag(args, 'duration'));
      const reason = stringFlag(args, 'reason');
      if (!id || !Number.isInteger(duration) || !reason) throw new UsageError(USAGE);
      const r = await api.json<AccessRequest>('POST', '/v1/access-requests', { connection: id, durationSeconds: duration, reason });
      show(r, `Requested access to ${r.connection} for ${Math.round(r.durationSeconds / 60)} min: ${r.id} (pending)`);
      return EXIT.ok;
    }
    case 'approve':
    case 'deny': {
      allowOnly(args, ['comment', 'json']);
      if (!id) throw new UsageError(USAGE);
      const comment = stringFlag(args, 'comment');
      const r = await api.json<AccessRequest>('POST', `/v1/access-requests/${encodeURIComponent(id)}/${sub}`, comment ? { comment } : {});
      show(r, sub === 'approve' ? `Granted ${r.identity} access to ${r.connection} until ${r.grantedUntil}` : `Denied ${r.identity} access to ${r.connection}`);
      return EXIT.ok;
    }
    case 'revoke': {
      allowOnly(args, ['reason', 'json']);
      if (!id) throw new UsageError(USAGE);
      const reason = stringFlag(args, 'reason');
      const r = await api.json<AccessRequest>('POST', `/v1/access-requests/${encodeURIComponent(id)}/revoke`, reason ? { reason } : {});
      show(r, `Revoked ${r.identity}'s access to ${r.connection} (${r.id}): its sessions end now and its credentials no longer work`);
      return EXIT.ok;
    }
    default:
      throw new UsageError(USAGE);
  }
}
