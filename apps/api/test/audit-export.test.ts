import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { Prisma } from '@portcullis/db';
import { decodeCursor, encodeCursor, type ExportCursor } from '../src/audit/export-cursor.js';
import { ControlEventsService } from '../src/control-events/control-events.service.js';
import { startTestApi, type TestApi } from './support.js';
import { RecordingFixture } from '../../../test/support/recorder-fixture.js';

/** the export's order: transaction, then position in it */
function byExportOrder(a: ExportCursor, b: ExportCursor): number {
  return a.txid !== b.txid ? (a.txid < b.txid ? -1 : 1) : a.position === b.position ? 0 : a.position < b.position ? -1 : 1;
}

const JSONL_KEYS = ['connection', 'data', 'gateway', 'hash', 'id', 'identity', 'prevHash', 'seq', 'sessionId', 'time', 'type'];

describe('audit export (SIEM pull)', () => {
  let api: TestApi;
  let rec: RecordingFixture;
  let auditor: string;
  let user: string;
  /** cursor just before this file's events */
  let start: string;

  beforeAll(async () => {
    api = await startTestApi();
    // two recorders share the consumer: their transactions commit interleaved
    rec = await new RecordingFixture(api).start(2, { RECORDER_BATCH: '20' });
    auditor = await rec.tokenWithRoles(['auditor']);
    user = await rec.tokenWithRoles(['user', 'approver']);
    const last = await rec.prisma.event.findFirst({ orderBy: [{ txid: 'desc' }, { position: 'desc' }], select: { txid: true, position: true } });
    start = encodeCursor(last ?? { txid: 0n, position: 0n });
  });
  afterAll(async () => {
    await rec?.close();
    await api?.close();
  });

  async function page(cursor: string, limit: number, format = 'jsonl', token = auditor) {
    const r = await api.http.get('/v1/audit/events').query({ cursor, limit, format }).set('Authorization', token).expect(200);
    return { lines: r.text.split('\n').filter(Boolean), next: r.headers['x-next-cursor'] as string, type: r.headers['content-type'] as string };
  }

  /**
   * Waits until the export from `from` delivers `n` events of session `s`: a committed row shows once
   * every older transaction on the Postgres cluster has ended (another recorder's batch, another test's).
   */
  async function waitExported(from: string, s: string, n: number) {
    const deadline = Date.now() + 120_000;
    for (;;) {
      let cursor = from;
      let count = 0;
      for (;;) {
        const p = await page(cursor, 5000);
        count += p.lines.filter((l) => JSON.parse(l).sessionId === s).length;
        cursor = p.next;
        if (p.lines.length < 5000) break;
      }
      if (count >= n) return;
      if (Date.now() > deadline) throw new Error(`export shows ${count} of ${n} events of ${s}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('pages oldest first with no gaps and no duplicates while events are being written concurrently', async () => {
    const sessions = Array.from({ length: 12 }, () => rec.newSession());
    const all = sessions.flatMap((s) => rec.richSession(s));
    const mine = new Set(all.map((e) => e.id));
    // a control-plane change through the api's own publisher, too
    const control = await api.get(ControlEventsService).record({ type: 'policy.changed', actor: 'admin', data: { action: 'update', target: 'policy:export-test' } });
    mine.add(control.id);

    const seen: string[] = [];
    let cursor = start;
    const publishing = (async () => {
      for (let i = 0; i < all.length; i += 30) {
        await rec.publish(all.slice(i, i + 30));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const deadline = Date.now() + 120_000;
    while ([...mine].some((id) => !seen.includes(id))) {
      if (Date.now() > deadline) throw new Error(`export saw ${seen.filter((id) => mine.has(id)).length} of ${mine.size}`);
      const p = await page(cursor, 17);
      for (const l of p.lines) seen.push(JSON.parse(l).id);
      if (!p.lines.length) expect(p.next).toBe(cursor);
      cursor = p.next;
      if (!p.lines.length) await new Promise((r) => setTimeout(r, 30));
    }
    await publishing;
    expect(new Set(seen).size).toBe(seen.length);
    const mineSeen = seen.filter((id) => mine.has(id));
    expect(mineSeen.length).toBe(mine.size);

    // Oldest first: the order seen is (txid, position) order, and nothing between start and the cursor was skipped.
    const rows = await rec.prisma.event.findMany({ where: { id: { in: seen } }, select: { id: true, txid: true, position: true, chain: true, seq: true } });
    const key = new Map(rows.map((r) => [r.id, r]));
    const order = seen.filter((id) => key.has(id)).map((id) => key.get(id)!);
    expect(order.map((r) => r.id)).toEqual([...order].sort(byExportOrder).map((r) => r.id));
    const lo = decodeCursor(start);
    const hi = decodeCursor(cursor);
    const inRange = (await rec.prisma.event.findMany({ where: { txid: { gte: lo.txid, lte: hi.txid } }, select: { id: true, txid: true, position: true } }))
      .filter((r) => byExportOrder(r, lo) > 0 && byExportOrder(r, hi) <= 0);
    const seenSet = new Set(seen);
    expect(inRange.filter((r) => !seenSet.has(r.id))).toEqual([]);
    // and each session's events came out in chain order
    for (const s of sessions) {
      const seqs = order.filter((r) => r.chain === s).map((r) => r.seq);
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    }
  });

  it('never skips a row whose transaction commits after a later one: writers without a lock, real Postgres transactions', async () => {
    // Two writers, as two recorders are: A gets its transaction id first, B inserts and commits first,
    // A then inserts (a higher position than B's row) and commits last. Position order, commit order and
    // transaction order all differ; the export must still deliver both rows, once each, and never pass
    // a row that is not committed yet.
    const chain = `export-writers-${randomUUID()}`;
    const row = (seq: number) => Prisma.sql`INSERT INTO "Event" (id, chain, "sessionId", seq, time, type, identity, connection, gateway, data, "prevHash", hash)
      VALUES (${randomUUID()}::uuid, ${chain}, ${chain}, ${seq}, now(), 'statement', 'writer-test', 'c', 'g', '{}'::jsonb, 'p', 'h') RETURNING id::text AS id, position`;
    const gate = () => {
      let open!: () => void;
      const p = new Promise<void>((r) => (open = r));
      return { p, open };
    };
    const aHasTxid = gate(), aMayInsert = gate(), aInserted = gate(), aMayCommit = gate();
    let aRow: { id: string; position: bigint } | undefined;
    const writerA = rec.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT pg_current_xact_id()::text AS x`;
      aHasTxid.open();
      await aMayInsert.p;
      aRow = (await tx.$queryRaw<{ id: string; position: bigint }[]>(row(2)))[0];
      aInserted.open();
      await aMayCommit.p;
    }, { timeout: 120_000, maxWait: 30_000 });
    try {
      await aHasTxid.p;
      const bRow = (await rec.prisma.$queryRaw<{ id: string; position: bigint }[]>(row(1)))[0];
      aMayInsert.open();
      await aInserted.p;
      expect(aRow!.position).toBeGreaterThan(bRow.position);

      const seen: string[] = [];
      let cursor = start;
      const pull = async () => {
        for (;;) {
          const p = await page(cursor, 500);
          cursor = p.next;
          seen.push(...p.lines.map((l) => JSON.parse(l)).filter((e) => e.sessionId === chain).map((e) => e.id as string));
          if (p.lines.length < 500) return;
        }
      };
      // B committed, A not: B's row waits behind A's open transaction (A's txid is older).
      await pull();
      expect(seen).toEqual([]);
      aMayCommit.open();
      await writerA;
      const deadline = Date.now() + 60_000;
      while (seen.length < 2 && Date.now() < deadline) {
        await pull();
        if (seen.length < 2) await new Promise((r) => setTimeout(r, 50));
      }
      // both, once each, in transaction order (A's transaction is older, though its row's position is higher)
      expect(seen).toEqual([aRow!.id, bRow.id]);
    } finally {
      aMayInsert.open();
      aMayCommit.open();
      await writerA.catch(() => undefined);
      await rec.prisma.event.deleteMany({ where: { chain } });
    }
  });

  it('jsonl: one recorded event per line, resumable from X-Next-Cursor', async () => {
    const s = rec.newSession();
    const evs = rec.richSession(s);
    await rec.publish(evs);
    await rec.waitStored([s], evs.length);
    const at = await rec.prisma.event.findFirstOrThrow({ where: { chain: s, seq: 1 } });
    const from = encodeCursor({ txid: at.txid, position: at.position - 1n });
    await waitExported(from, s, evs.length);
    const a = await page(from, 3);
    expect(a.type).toMatch(/application\/x-ndjson/);
    expect(a.lines).toHaveLength(3);
    const first = JSON.parse(a.lines[0]);
    expect(Object.keys(first).sort()).toEqual(JSONL_KEYS);
    expect(first).toMatchObject({ id: evs[0].id, sessionId: s, seq: 1, type: 'session.start', identity: 'carol' });
    expect(first.hash).toMatch(/^[0-9a-f]{64}$/);
    // Other test files commit rows in between, so keep paging (3 at a time) until 4 of ours are seen:
    // they must come in order, each once, across page boundaries.
    const seen = a.lines.map((l) => JSON.parse(l).id as string);
    let next = a.next;
    for (let i = 0; i < 50 && seen.filter((id) => evs.some((e) => e.id === id)).length < 4; i++) {
      const b = await page(next, 3);
      seen.push(...b.lines.map((l) => JSON.parse(l).id as string));
      next = b.next;
    }
    expect(new Set(seen).size).toBe(seen.length);
    const ids = seen.filter((id) => evs.some((e) => e.id === id));
    expect(ids.slice(0, 4)).toEqual(evs.slice(0, 4).map((e) => e.id));
  });

  it('ocsf: Authentication 3002, Datastore Activity 6005 and API Activity 6003 records', async () => {
    const s = rec.newSession();
    const evs = rec.richSession(s);
    await rec.publish(evs);
    await rec.waitStored([s], evs.length);
    const at = await rec.prisma.event.findFirstOrThrow({ where: { chain: s, seq: 1 } });
    const from = encodeCursor({ txid: at.txid, position: at.position - 1n });
    await waitExported(from, s, evs.length);
    const p = await page(from, 1000, 'ocsf');
    const recs = p.lines.map((l) => JSON.parse(l)).filter((r) => r.metadata.correlation_uid === s);
    expect(recs).toHaveLength(evs.length);
    const start = recs[0];
    expect(start).toMatchObject({ class_uid: 3002, category_uid: 3, activity_id: 1, type_uid: 300201, metadata: { version: '1.1.0', uid: evs[0].id, product: { name: 'Portcullis' } }, user: { name: 'carol' }, src_endpoint: { ip: '10.1.2.3', port: 50000 } });
    expect(typeof start.time).toBe('number');
    expect(recs[1]).toMatchObject({ class_uid: 6005, activity_id: 4, type_uid: 600504, database: { name: 'demo' } });
    expect(recs[5]).toMatchObject({ class_uid: 6005, disposition: 'Blocked', severity_id: 4, status_id: 2 });
    expect(recs.at(-1)).toMatchObject({ class_uid: 3002, activity_id: 2 });
    expect(recs[3].unmapped.portcullis.hash).toBe((await rec.prisma.event.findFirstOrThrow({ where: { chain: s, seq: 4 } })).hash);

    const control = await api.get(ControlEventsService).record({ type: 'connection.changed', actor: 'admin', data: { action: 'delete', target: 'connection:old' } });
    let api6003: Record<string, unknown> | undefined;
    for (let i = 0; i < 100 && !api6003; i++) {
      const q = await page(p.next, 1000, 'ocsf');
      api6003 = q.lines.map((l) => JSON.parse(l)).find((r) => r.metadata.uid === control.id);
      if (!api6003) await new Promise((r) => setTimeout(r, 50));
    }
    expect(api6003).toMatchObject({ class_uid: 6003, category_uid: 6, activity_id: 4, type_uid: 600304, api: { operation: 'connection.changed' }, actor: { user: { name: 'admin' } } });
  });

  it('cef: one CEF line per event with escaped extension values', async () => {
    const s = rec.newSession();
    const evs = [rec.event(s, 1, 'session.start', { clientAddr: '1.2.3.4:5' }), rec.event(s, 2, 'query', { sql: "SELECT 'a=b' | x\\y\nz", protocol: 'simple' })];
    await rec.publish(evs);
    await rec.waitStored([s], 2);
    const at = await rec.prisma.event.findFirstOrThrow({ where: { chain: s, seq: 1 } });
    const from = encodeCursor({ txid: at.txid, position: at.position - 1n });
    await waitExported(from, s, 2);
    const p = await page(from, 1000, 'cef');
    expect(p.type).toMatch(/text\/plain/);
    const lines = p.lines.filter((l) => l.includes(`cs1=${s}`));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^CEF:0\|Portcullis\|Portcullis\|0\.1\.0\|session\.start\|session\.start\|3\|rt=\d+ externalId=/);
    expect(lines[1]).toContain("msg=SELECT 'a\\=b' | x\\\\y\\nz");
    expect(lines[1]).toContain(`externalId=${evs[1].id}`);
  });

  it('a statement event (query, decision and result in one, as the gateway records simple-protocol statements) carries every field of the three in jsonl, ocsf and cef', async () => {
    const s = rec.newSession();
    const allowed = { sql: 'SELECT name, email FROM customers LIMIT 2', protocol: 'simple', action: 'allow', rule: 'default', reason: 'no guardrail matched', kinds: ['SELECT'], cached: true, policyVersion: 2, tag: 'SELECT 2', rows: 2, durationMs: 3.2, masking: { columns: ['email'], values: 2 } };
    const blocked = { sql: 'DROP TABLE customers', protocol: 'simple', action: 'block', rule: 'no-destructive-ddl', reason: 'DDL is not allowed', rows: 0, durationMs: 0, error: { code: '42501', message: 'statement blocked' } };
    const evs = [rec.event(s, 1, 'session.start', { clientAddr: '10.1.2.3:50000' }), rec.event(s, 2, 'statement', allowed), rec.event(s, 3, 'statement', blocked)];
    await rec.publish(evs);
    await rec.waitStored([s], 3);
    const at = await rec.prisma.event.findFirstOrThrow({ where: { chain: s, seq: 1 } });
    const from = encodeCursor({ txid: at.txid, position: at.position - 1n });
    await waitExported(from, s, 3);
    const jsonl = (await page(from, 1000)).lines.map((l) => JSON.parse(l)).filter((e) => e.sessionId === s);
    expect(jsonl.map((e) => e.type)).toEqual(['session.start', 'statement', 'statement']);
    expect(Object.keys(jsonl[1]).sort()).toEqual(JSONL_KEYS);
    // every member the query, decision and result events carried, under the same names
    expect(jsonl[1].data).toEqual(allowed);
    expect(jsonl[2].data).toEqual(blocked);
    expect(jsonl[1].hash).toBe((await rec.prisma.event.findFirstOrThrow({ where: { chain: s, seq: 2 } })).hash);

    const ocsf = (await page(from, 1000, 'ocsf')).lines.map((l) => JSON.parse(l)).filter((r) => r.metadata.correlation_uid === s);
    expect(ocsf[1]).toMatchObject({ class_uid: 6005, activity_id: 4, type_uid: 600504, disposition: 'Allowed', status_id: 1, duration: 3, severity_id: 1, unmapped: { portcullis: { type: 'statement', data: allowed } } });
    expect(ocsf[1].message).toContain('SELECT name, email FROM customers LIMIT 2');
    expect(ocsf[2]).toMatchObject({ class_uid: 6005, disposition: 'Blocked', status_id: 2, status: 'Failure', severity_id: 4 });
    expect(ocsf[2].message).toMatch(/DROP TABLE customers → block by no-destructive-ddl: error 42501/);

    const cef = (await page(from, 1000, 'cef')).lines.filter((l) => l.includes(`cs1=${s}`));
    expect(cef[1]).toMatch(/^CEF:0\|Portcullis\|Portcullis\|0\.1\.0\|statement\|statement\|3\|/);
    expect(cef[1]).toContain('act=allow');
    expect(cef[2]).toMatch(/\|statement\|statement\|8\|/);
    expect(cef[2]).toContain('act=block');
    expect(cef[2]).toContain('"rule":"no-destructive-ddl"');
  });

  it('rejects a bad cursor, format or limit with 400', async () => {
    const b64 = (t: string) => Buffer.from(t).toString('base64url');
    for (const cursor of ['not a cursor!', 'Zm9v', b64('v1:-5'), b64('v1:99999999999999999999'), b64('v2:5'), b64('v2:1:2:3'), b64('v2:01:2'), b64('v2:9223372036854775808:1')]) {
      const r = await api.http.get('/v1/audit/events').query({ cursor }).set('Authorization', auditor).expect(400);
      expect(r.body.error.code).toBe('invalid_cursor');
    }
    // a cursor from before transaction ids were stored still resumes (at-least-once)
    await api.http.get('/v1/audit/events').query({ cursor: b64('v1:0'), limit: 1 }).set('Authorization', auditor).expect(200);
    expect(decodeCursor(b64('v1:42'))).toEqual({ txid: 0n, position: 42n });
    expect(decodeCursor(encodeCursor({ txid: 7n, position: 9n }))).toEqual({ txid: 7n, position: 9n });
    await api.http.get('/v1/audit/events').query({ format: 'xml' }).set('Authorization', auditor).expect(400);
    await api.http.get('/v1/audit/events').query({ limit: 0 }).set('Authorization', auditor).expect(400);
    await api.http.get('/v1/audit/events').query({ limit: 100000 }).set('Authorization', auditor).expect(400);
  });

  it('is open to auditors and admins only', async () => {
    await api.http.get('/v1/audit/events').query({ cursor: start, limit: 1 }).expect(401);
    const r = await api.http.get('/v1/audit/events').query({ cursor: start, limit: 1 }).set('Authorization', user).expect(403);
    expect(r.body.error).toBeTruthy();
    await api.http.get('/v1/audit/events').query({ cursor: start, limit: 1 }).set('Authorization', api.admin).expect(200);
    await api.http.get('/v1/audit/events').query({ cursor: start, limit: 1 }).set('Authorization', auditor).expect(200);
  });
});
