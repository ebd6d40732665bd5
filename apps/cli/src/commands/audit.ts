import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { allowOnly, boolFlag, stringFlag, UsageError, type ParsedArgs } from '../args.js';
import { authedClient, EXIT, println, type CliContext } from '../context.js';

const FORMATS = ['jsonl', 'ocsf', 'cef'] as const;
const USAGE = 'usage: portcullis audit export [--format jsonl|ocsf|cef] [--cursor <c> | --cursor-file <path>] [--limit n] [--follow [--interval s]]';

/** Turns one page into lines: the api sends JSON lines / CEF text; a JSON array or `{events}` is accepted too. */
export function pageLines(text: string, contentType: string): string[] {
  const trimmed = text.trim();
  if (!trimmed) return [];
  if (contentType.includes('application/json')) {
    try {
      const parsed = JSON.parse(trimmed) as unknown;
      let list: unknown;
      if (Array.isArray(parsed)) list = parsed;
      else if (parsed && typeof parsed === 'object') {
        const o = parsed as Record<string, unknown>;
        list = [o.events, o.items, o.data].find(Array.isArray);
      }
      if (Array.isArray(list)) return list.map((e) => (typeof e === 'string' ? e : JSON.stringify(e)));
    } catch {
      // not one JSON document: JSON lines served as application/json
    }
  }
  return trimmed.split('\n').filter((l) => l.trim() !== '');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Pulls every event after the cursor, oldest first, to stdout; the next cursor goes to stderr (and to
 * --cursor-file, so a cron job or SIEM shipper resumes where it stopped). --follow keeps polling.
 */
export async function audit(ctx: CliContext, args: ParsedArgs): Promise<number> {
  const [sub, ...extra] = args.positionals;
  if (sub !== 'export' || extra.length > 0) throw new UsageError(USAGE);
  allowOnly(args, ['format', 'cursor', 'cursor-file', 'limit', 'follow', 'interval']);
  const format = stringFlag(args, 'format') ?? 'jsonl';
  if (!(FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format: one of ${FORMATS.join(', ')}, got "${format}"`);
  const limitRaw = stringFlag(args, 'limit');
  const limit = limitRaw === undefined ? undefined : Number(limitRaw);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new UsageError('--limit: a positive integer');
  const interval = Number(stringFlag(args, 'interval') ?? 2);
  if (!Number.isFinite(interval) || interval <= 0) throw new UsageError('--interval: seconds, a positive number');
  const follow = boolFlag(args, 'follow');
  const cursorFile = stringFlag(args, 'cursor-file');
  let cursor = stringFlag(args, 'cursor');
  if (cursor === undefined && cursorFile && existsSync(cursorFile)) cursor = readFileSync(cursorFile, 'utf8').trim() || undefined;

  const api = authedClient(ctx);
  let total = 0;
  for (;;) {
    const q = new URLSearchParams({ format });
    if (cursor) q.set('cursor', cursor);
    if (limit) q.set('limit', String(limit));
    const res = await api.raw('GET', `/v1/audit/events?${q}`, { accept: format === 'cef' ? 'text/plain, */*' : 'application/x-ndjson, application/json, */*' });
    const lines = pageLines(res.text, res.headers.get('content-type') ?? '');
    for (const line of lines) ctx.stdout.write(`${line}\n`);
    total += lines.length;
    const next = res.headers.get('x-next-cursor') ?? undefined;
    const advanced = next !== undefined && next !== '' && next !== cursor;
    if (advanced) {
      cursor = next;
      if (cursorFile) writeFileSync(cursorFile, `${cursor}\n`);
    }
    if (ctx.signal.aborted) break;
    if (lines.length > 0 && advanced) continue; // more may be waiting: ask again at once
    if (!follow) break;
    await sleep(interval * 1000, ctx.signal);
    if (ctx.signal.aborted) break;
  }
  println(ctx.stderr, `${total} event(s); next cursor: ${cursor ?? '(none yet)'}`);
  return EXIT.ok;
}
