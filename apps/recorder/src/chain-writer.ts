import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import type { Pool, PoolClient, QueryResult } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import {
  canonicalJson, chainedEventHash, chainedEventHashFast, CONTROL_CHAIN, GENESIS_HASH, normaliseTime, type ChainedEvent, type WireEvent,
} from '@portcullis/protocol';
import type { DeadLetterReason } from './event-decoder.js';

const { escapeLiteral } = pg;

/** One decoded, signature-checked event waiting to be chained. */
export interface PendingEvent {
  event: WireEvent;
  /** canonicalJson(event.data), computed once while decoding */
  canonicalData?: string;
  /** JetStream stream sequence: the order events were published in. */
  streamSeq: number;
  /** true once the event has waited long enough for a missing predecessor: chain it across the gap. */
  gapExpired: boolean;
}

export type Outcome =
  | { kind: 'stored'; chain: string; seq: number; hash: string; gap: boolean }
  | { kind: 'duplicate' }
  | { kind: 'defer' }
  | { kind: 'reject'; reason: DeadLetterReason; detail: string };

export interface ChainHead {
  seq: number;
  hash: string;
}

export interface WriteResult {
  outcomes: Outcome[];
  /** new head of every chain this batch appended to */
  heads: Map<string, ChainHead>;
}

interface SessionRow {
  id: string;
  identity: string;
  connection: string;
  gateway: string;
  pool: string | null;
  clientAddr: string | null;
  startedAt: string;
  endedAt: string | null;
  lastSeq: number;
  lastHash: string;
  events: number;
}

export interface StoredRow extends ChainedEvent {
  chain: string;
  hash: string;
  /** canonicalJson(data), when the decoder already computed it */
  canonicalData?: string;
}

/** The chain locks of an array of chain names (`arr`: an SQL expression of type text[]). */
function lockChainsSql(arr: string): string {
  return `SELECT pg_advisory_xact_lock(k) FROM (
       SELECT DISTINCT hashtextextended('portcullis:chain:' || c, 0) AS k FROM unnest(${arr}) AS c ORDER BY 1
     ) AS keys`;
}

/**
 * Locks the given chains for the rest of the transaction. Keys are taken in one sorted order so
 * two recorders locking overlapping sets cannot deadlock; a row lock would not do, since a new
 * session has no row to lock yet.
 */
export async function lockChains(client: PoolClient, chains: string[]): Promise<void> {
  if (!chains.length) return;
  await client.query(lockChainsSql('$1::text[]'), [chains]);
}

/**
 * An array literal for a simple-protocol query, which has no parameters: strings escaped
 * (escapeLiteral; event fields never hold NUL, the decoder refuses it), numbers only as safe integers.
 */
function sqlArray(values: readonly (string | number | null)[], type: string): string {
  if (!values.length) return `'{}'::${type}[]`;
  let out = 'ARRAY[';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i) out += ',';
    if (v === null) out += 'NULL';
    else if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new TypeError(`not an integer: ${v}`);
      out += String(v);
    } else out += escapeLiteral(v);
  }
  return `${out}]::${type}[]`;
}

/**
 * BEGIN, the chain locks and the heads of the batch's sessions in one round trip: three statements
 * in one simple query. The heads are read by a statement of their own, after the locks are held (a
 * statement's snapshot is taken when it starts), and nothing is written yet, so the transaction id
 * the export orders by is assigned after the locks.
 */
async function beginLocked(client: PoolClient, chains: string[], sessionIds: string[]): Promise<Map<string, ChainHead>> {
  const results = (await client.query(
    `BEGIN; ${lockChainsSql(sqlArray(chains, 'text'))}; SELECT id, "lastSeq", "lastHash" FROM "Session" WHERE id = ANY(${sqlArray(sessionIds, 'text')})`,
  )) as unknown as QueryResult<{ id: string; lastSeq: number; lastHash: string | null }>[];
  const heads = new Map<string, ChainHead>();
  for (const row of results[2].rows) heads.set(row.id, { seq: row.lastSeq, hash: row.lastHash ?? GENESIS_HASH });
  return heads;
}

export async function controlHead(client: PoolClient): Promise<ChainHead> {
  const r = await client.query<{ seq: number; hash: string }>(
    `SELECT seq, hash FROM "Event" WHERE chain = $1 ORDER BY seq DESC LIMIT 1`,
    [CONTROL_CHAIN],
  );
  return r.rows[0] ?? { seq: 0, hash: GENESIS_HASH };
}

const COPY_EVENT_SQL = `COPY "Event" (id, chain, "sessionId", seq, time, type, identity, connection, gateway, data, "prevHash", hash) FROM STDIN`;

/** COPY text format: backslash, newline, carriage return and tab are escaped; `\N` is NULL. */
function copyText(v: string | null): string {
  if (v === null) return '\\N';
  return /[\\\n\r\t]/.test(v) ? v.replace(/[\\\n\r\t]/g, (c) => COPY_ESCAPES[c]) : v;
}
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** One row of `COPY "Event" ... FROM STDIN` (text format); `data` as its canonical JSON. */
function copyLine(r: StoredRow): string {
  const data = r.canonicalData ?? canonicalJson(r.data);
  return `${r.id}\t${copyText(r.chain)}\t${copyText(r.sessionId)}\t${r.seq}\t${r.time}\t${copyText(r.type)}\t${copyText(r.identity)}\t${copyText(r.connection)}\t${copyText(r.gateway)}\t${copyText(data)}\t${r.prevHash}\t${r.hash}\n`;
}

/**
 * Inserts chained rows. Each row's `txid` column defaults to the id of this transaction, and the
 * audit export pages by (txid, position) up to the oldest transaction still in flight (apps/api
 * AuditExportService), so writers need no lock of their own here: two recorders insert and commit
 * side by side. The caller must hold the chain locks (lockChains) before the transaction's first
 * write, so that a chain's later rows always get a higher txid. Returns how many rows were inserted.
 *
 * The rows go in with COPY (measured ~30% cheaper per row than INSERT .. SELECT from a JSON or
 * array parameter, and no JSON.stringify of the batch). COPY has no ON CONFLICT: an id that is
 * already stored (by another recorder, after the duplicate lookup) fails the statement with a
 * unique violation, which is reported as a ChainConflictError so the batch is retried with every
 * id looked up first.
 */
export async function appendRows(client: PoolClient, rows: StoredRow[]): Promise<number> {
  if (!rows.length) return 0;
  let text = '';
  for (const r of rows) text += copyLine(r);
  const stream = client.query(copyFrom(COPY_EVENT_SQL));
  try {
    await pipeline(Readable.from([text]), stream);
  } catch (err) {
    if ((err as { code?: unknown }).code === '23505') throw new ChainConflictError(`an event of the batch is already stored: ${(err as Error).message}`, { cause: err });
    throw err;
  }
  return stream.rowCount;
}

/** A batch could not be applied as planned (a concurrent writer broke an assumption); retry it. */
export class ChainConflictError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ChainConflictError';
  }
}

/**
 * Appends a batch of events to their hash chains in one transaction:
 * per chain, events in seq order; an event whose predecessor is missing waits (is redelivered)
 * unless its gap timeout expired; an id already stored is a duplicate (acked, skipped).
 */
export class ChainWriter {
  constructor(private readonly pool: Pool) {}

  async write(items: PendingEvent[]): Promise<WriteResult> {
    try {
      return await this.writeOnce(items, false);
    } catch (err) {
      if (!(err instanceof ChainConflictError)) throw err;
      return this.writeOnce(items, true);
    }
  }

  private async writeOnce(items: PendingEvent[], checkAllIds: boolean): Promise<WriteResult> {
    const outcomes: Outcome[] = new Array(items.length);
    const heads = new Map<string, ChainHead>();
    if (!items.length) return { outcomes, heads };

    // In-batch duplicates (same id twice): the first one decides, the others are acked.
    const firstById = new Map<string, number>();
    const byChain = new Map<string, number[]>();
    const copies: Array<[copy: number, first: number]> = [];
    items.forEach((it, i) => {
      const id = it.event.id.toLowerCase();
      const first = firstById.get(id);
      if (first !== undefined) {
        copies.push([i, first]);
        return;
      }
      firstById.set(id, i);
      const chain = it.event.sessionId ?? CONTROL_CHAIN;
      let list = byChain.get(chain);
      if (!list) byChain.set(chain, (list = []));
      list.push(i);
    });
    // A copy shares the fate of the first one: it may only be acked once the event is stored
    // (or parked); a deferred event's copy waits with it.
    const settleCopies = () => {
      for (const [copy, first] of copies) {
        const o = outcomes[first];
        outcomes[copy] = o.kind === 'stored' ? { kind: 'duplicate' } : o;
      }
    };

    for (const [chain, list] of byChain) {
      list.sort(chain === CONTROL_CHAIN
        ? (a, b) => items[a].streamSeq - items[b].streamSeq
        : (a, b) => items[a].event.seq - items[b].event.seq || items[a].streamSeq - items[b].streamSeq);
    }

    const client = await this.pool.connect();
    let released = false;
    try {
      // A batch is three round trips: BEGIN + chain locks + heads, the COPY, the Session upsert + COMMIT
      // (plus a lookup when an event may be a redelivery, and the control chain's head).
      const chains = [...byChain.keys()];
      const sessionIds = chains.filter((c) => c !== CONTROL_CHAIN);
      const sessionHeads = await beginLocked(client, chains, sessionIds);
      // Only events that could already be stored are looked up: control-plane events and session
      // events at or behind their chain head. A fresh id stored elsewhere still trips the insert
      // count check below, and the retry then looks up every id (`checkAllIds`).
      const existing = new Map<string, string>();
      const lookup: string[] = [];
      for (const [id, i] of firstById) {
        const { sessionId, seq } = items[i].event;
        if (checkAllIds || sessionId === null || seq <= (sessionHeads.get(sessionId)?.seq ?? 0)) lookup.push(id);
      }
      if (lookup.length) {
        const r = await client.query<{ id: string; chain: string }>(`SELECT id::text AS id, chain FROM "Event" WHERE id = ANY($1::uuid[])`, [lookup]);
        for (const row of r.rows) existing.set(row.id, row.chain);
      }

      const appended = new Map<string, StoredRow[]>();
      const sessionRows: SessionRow[] = [];
      for (const [chain, list] of byChain) {
        const isControl = chain === CONTROL_CHAIN;
        let head = isControl ? await controlHead(client) : (sessionHeads.get(chain) ?? { seq: 0, hash: GENESIS_HASH });
        const rows: StoredRow[] = [];
        let waiting = false;
        for (const i of list) {
          const { event } = items[i];
          const id = event.id.toLowerCase();
          const storedIn = existing.get(id);
          if (storedIn !== undefined) {
            outcomes[i] = storedIn === chain
              ? { kind: 'duplicate' }
              : { kind: 'reject', reason: 'id-conflict', detail: `event id already stored in another chain` };
            continue;
          }
          if (waiting) {
            outcomes[i] = { kind: 'defer' };
            continue;
          }
          let seq: number;
          let gap = false;
          if (isControl) {
            seq = head.seq + 1;
          } else if (event.seq <= head.seq) {
            outcomes[i] = { kind: 'reject', reason: 'seq-conflict', detail: `seq ${event.seq} is at or behind the chain head ${head.seq}` };
            continue;
          } else if (event.seq === head.seq + 1) {
            seq = event.seq;
          } else if (items[i].gapExpired) {
            seq = event.seq;
            gap = true;
          } else {
            waiting = true;
            outcomes[i] = { kind: 'defer' };
            continue;
          }
          const chained: ChainedEvent = {
            id,
            sessionId: event.sessionId,
            seq,
            time: normaliseTime(event.time),
            type: event.type,
            identity: event.identity,
            connection: event.connection,
            gateway: event.gateway,
            data: event.data,
            prevHash: head.hash,
          };
          const cd = items[i].canonicalData;
          const hash = cd === undefined ? chainedEventHash(chained) : chainedEventHashFast(chained, cd);
          rows.push({ ...chained, chain, hash, canonicalData: cd });
          head = { seq, hash };
          outcomes[i] = { kind: 'stored', chain, seq, hash, gap };
        }
        if (!rows.length) continue;
        appended.set(chain, rows);
        heads.set(chain, head);
        if (!isControl) sessionRows.push(sessionRowFor(chain, rows, head));
      }

      // Nothing was written before this point: the transaction id (the export's order) is assigned
      // here, after the chain locks.
      const ordered = exportOrder(items, byChain, appended);
      const inserted = await appendRows(client, ordered);
      if (inserted !== ordered.length) throw new ChainConflictError(`expected to insert ${ordered.length} events, inserted ${inserted}`);
      await client.query(sessionRows.length ? `${upsertSessionsSql(sessionRows)}; COMMIT` : 'COMMIT');
      settleCopies();
      return { outcomes, heads };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        // The connection is broken; release(err) below discards it.
        client.release(err as Error);
        released = true;
      });
      throw err;
    } finally {
      if (!released) client.release();
    }
  }
}

/**
 * Export positions follow publication (stream) order across chains, while each chain's rows stay in
 * chain order: the k-th slot a chain occupies in stream order receives its k-th appended row.
 */
function exportOrder(items: PendingEvent[], byChain: Map<string, number[]>, appended: Map<string, StoredRow[]>): StoredRow[] {
  const slots: { streamSeq: number; chain: string }[] = [];
  for (const [chain, rows] of appended) {
    const seqs = byChain.get(chain)!.map((i) => items[i].streamSeq).sort((a, b) => a - b).slice(0, rows.length);
    for (const s of seqs) slots.push({ streamSeq: s, chain });
  }
  slots.sort((a, b) => a.streamSeq - b.streamSeq);
  const cursor = new Map<string, number>();
  return slots.map(({ chain }) => {
    const k = cursor.get(chain) ?? 0;
    cursor.set(chain, k + 1);
    return appended.get(chain)![k];
  });
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v.length ? v : null;
}

function sessionRowFor(sessionId: string, rows: StoredRow[], head: ChainHead): SessionRow {
  const start = rows.find((r) => r.type === 'session.start') ?? rows[0];
  const end = rows.find((r) => r.type === 'session.end');
  return {
    id: sessionId,
    identity: start.identity ?? 'unknown',
    connection: start.connection ?? 'unknown',
    gateway: start.gateway ?? 'unknown',
    pool: str(start.data.pool),
    clientAddr: str(start.data.clientAddr),
    startedAt: start.time,
    endedAt: end ? end.time : null,
    lastSeq: head.seq,
    lastHash: head.hash,
    events: rows.length,
  };
}

/**
 * Creates the Session row on its first events (normally session.start, seq 1) and moves its head.
 * Identity fields are only taken on insert: a session's first event is its start. One statement of
 * literal arrays (one per column), so it travels with the COMMIT in one simple query.
 */
function upsertSessionsSql(rows: SessionRow[]): string {
  rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const col = <K extends keyof SessionRow>(k: K, type: string) => sqlArray(rows.map((r) => r[k] as string | number | null), type);
  return `INSERT INTO "Session" (id, identity, connection, gateway, pool, "clientAddr", "startedAt", "endedAt", "lastSeq", "lastHash", events)
     SELECT * FROM unnest(${col('id', 'text')}, ${col('identity', 'text')}, ${col('connection', 'text')}, ${col('gateway', 'text')}, ${col('pool', 'text')}, ${col('clientAddr', 'text')},
       ${col('startedAt', 'timestamptz')}, ${col('endedAt', 'timestamptz')}, ${col('lastSeq', 'int')}, ${col('lastHash', 'text')}, ${col('events', 'int')})
     ON CONFLICT (id) DO UPDATE SET
       "lastSeq" = EXCLUDED."lastSeq",
       "lastHash" = EXCLUDED."lastHash",
       events = "Session".events + EXCLUDED.events,
       "endedAt" = COALESCE(EXCLUDED."endedAt", "Session"."endedAt")`;
}

/** Who the recorder's own control-plane events (checkpoints, retention) name as the actor. */
export const RECORDER_ACTOR = 'system:recorder';

/**
 * Appends one control-plane event written by the recorder itself (not from the stream).
 * The caller holds the control-plane chain lock (lockChains) in an open transaction.
 */
export async function appendControlEvent(client: PoolClient, type: string, data: Record<string, unknown>, id: string, time = new Date()): Promise<StoredRow> {
  const head = await controlHead(client);
  const chained: ChainedEvent = {
    id,
    sessionId: null,
    seq: head.seq + 1,
    time: normaliseTime(time),
    type,
    identity: RECORDER_ACTOR,
    connection: null,
    gateway: null,
    data,
    prevHash: head.hash,
  };
  const row: StoredRow = { ...chained, chain: CONTROL_CHAIN, hash: chainedEventHash(chained) };
  const n = await appendRows(client, [row]);
  if (n !== 1) throw new ChainConflictError(`control event ${id} not inserted`);
  return row;
}
