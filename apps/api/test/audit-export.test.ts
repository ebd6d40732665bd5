import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCursor } from '../src/audit/export-cursor.js';
import { ControlEventsService } from '../src/control-events/control-events.service.js';
import { startTestApi, type TestApi } from './support.js';
import { RecordingFixture } from '../../../test/support/recorder-fixture.js';

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
    const max = await rec.prisma.event.aggregate({ _max: { position: true } });
    start = encodeCursor(max._max.position ?? 0n);
  });
  afterAll(async () => {
    await rec?.close();
    await api?.close();
  });

  async function page(cursor: string, limit: number, format = 'jsonl', token = auditor) {
    const r = await api.http.get('/v1/audit/events').query({ cursor, limit, format }).set('Authorization', token).expect(200);
    return { lines: r.text.split('\n').filter(Boolean), next: r.headers['x-next-cursor'] as string, type: r.headers['content-type'] as string };
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
    const deadline = Date.now() + 30_000;
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

    // Oldest first: the order seen is position order, and nothing between start and the cursor was skipped.
    const rows = await rec.prisma.event.findMany({ where: { id: { in: seen } }, select: { id: true, position: true, chain: true, seq: true } });
    const pos = new Map(rows.map((r) => [r.id, r.position]));
    const positions = seen.filter((id) => pos.has(id)).map((id) => pos.get(id)!);
    expect(positions).toEqual([...positions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    const lo = Buffer.from(start, 'base64url').toString().slice(3);
    const hi = Buffer.from(cursor, 'base64url').toString().slice(3);
    const inRange = await rec.prisma.event.findMany({ where: { position: { gt: BigInt(lo), lte: BigInt(hi) } }, select: { id: true } });
    const seenSet = new Set(seen);
    expect(inRange.filter((r) => !seenSet.has(r.id))).toEqual([]);
    // and each session's events came out in chain order
    for (const s of sessions) {
      const seqs = rows.filter((r) => r.chain === s).sort((a, b) => (a.position < b.position ? -1 : 1)).map((r) => r.seq);
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    }
  });

  it('jsonl: one recorded event per line, resumable from X-Next-Cursor', async () => {
    const s = rec.newSession();
    const evs = rec.richSession(s);
    await rec.publish(evs);
    await rec.waitStored([s], evs.length);
    const at = await rec.prisma.event.findFirstOrThrow({ where: { chain: s, seq: 1 } });
    const from = encodeCursor(at.position - 1n);
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
    const p = await page(encodeCursor(at.position - 1n), 1000, 'ocsf');
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
    const p = await page(encodeCursor(at.position - 1n), 1000, 'cef');
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
    const from = encodeCursor(at.position - 1n);
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
    for (const cursor of ['not a cursor!', 'Zm9v', Buffer.from('v1:-5').toString('base64url'), Buffer.from('v1:99999999999999999999').toString('base64url')]) {
      const r = await api.http.get('/v1/audit/events').query({ cursor }).set('Authorization', auditor).expect(400);
      expect(r.body.error.code).toBe('invalid_cursor');
    }
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
