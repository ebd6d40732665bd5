import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './support.js';
import { RecordingFixture } from '../../../test/support/recorder-fixture.js';

describe('sessions api: list, replay, verify', () => {
  let api: TestApi;
  let rec: RecordingFixture;
  let auditor: string;
  let user: string;
  let sid: string;
  let events: ReturnType<RecordingFixture['richSession']>;

  beforeAll(async () => {
    api = await startTestApi();
    rec = await new RecordingFixture(api).start();
    auditor = await rec.tokenWithRoles(['auditor']);
    user = await rec.tokenWithRoles(['user']);
    sid = rec.newSession();
    events = rec.richSession(sid);
    await rec.publish(events);
    await rec.waitStored([sid], events.length);
  });
  afterAll(async () => {
    await rec?.close();
    await api?.close();
  });

  it('lists sessions with filters and gets one', async () => {
    const list = await api.http.get('/v1/sessions').query({ identity: 'carol', connection: 'demo', since: new Date(Date.now() - 60_000).toISOString(), limit: 50 }).set('Authorization', auditor).expect(200);
    const mine = list.body.find((s: { id: string }) => s.id === sid);
    expect(mine).toMatchObject({ identity: 'carol', connection: 'demo', gateway: 'gw-t', pool: 'default', clientAddr: '10.1.2.3:50000', events: events.length, lastSeq: events.length });
    expect(mine.endedAt).toBeTruthy();
    const none = await api.http.get('/v1/sessions').query({ identity: 'nobody-at-all' }).set('Authorization', auditor).expect(200);
    expect(none.body).toEqual([]);
    const one = await api.http.get(`/v1/sessions/${sid}`).set('Authorization', api.admin).expect(200);
    expect(one.body.id).toBe(sid);
    const missing = await api.http.get('/v1/sessions/does-not-exist').set('Authorization', auditor).expect(404);
    expect(missing.body.error.code).toBe('not_found');
    await api.http.get('/v1/sessions').query({ since: 'yesterday' }).set('Authorization', auditor).expect(400);
  });

  it('replays the ordered timeline: statements, decisions, masking, approvals, counts, durations, errors', async () => {
    const r = await api.http.get(`/v1/sessions/${sid}/events`).set('Authorization', auditor).expect(200);
    expect(r.body.session.id).toBe(sid);
    expect(r.body.next).toBeNull();
    expect(r.body.events.map((e: { seq: number }) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(r.body.events.map((e: { id: string }) => e.id)).toEqual(events.map((e) => e.id));
    const types = r.body.events.map((e: { type: string }) => e.type);
    expect(types).toEqual(events.map((e) => e.type));
    const first = r.body.events[0];
    expect(Object.keys(first).sort()).toEqual(['connection', 'data', 'gateway', 'hash', 'id', 'identity', 'prevHash', 'seq', 'sessionId', 'time', 'type']);
    expect(r.body.events[3].data).toEqual({ tag: 'SELECT 2', rows: 2, durationMs: 3.2, masking: { columns: ['email'], values: 2 } });
    expect(r.body.events[5].data).toMatchObject({ action: 'block', rule: 'no-destructive-ddl' });
    expect(r.body.events[12].data.error.code).toBe('42P01');
    // paging
    const p1 = await api.http.get(`/v1/sessions/${sid}/events`).query({ limit: 5 }).set('Authorization', auditor).expect(200);
    expect(p1.body.events).toHaveLength(5);
    expect(p1.body.next).toBe(5);
    const p2 = await api.http.get(`/v1/sessions/${sid}/events`).query({ after: 5, limit: 100 }).set('Authorization', auditor).expect(200);
    expect(p2.body.events[0].seq).toBe(6);
  });

  it('verifies an untouched chain', async () => {
    const r = await api.http.get(`/v1/sessions/${sid}/verify`).set('Authorization', auditor).expect(200);
    expect(r.body).toMatchObject({ valid: true, events: events.length, brokenAt: null });
    expect(r.body.head.seq).toBe(events.length);
  });

  it('reports the first hand-edited event (SQL UPDATE of data)', async () => {
    const s = rec.newSession();
    const evs = rec.richSession(s);
    await rec.publish(evs);
    await rec.waitStored([s], evs.length);
    await rec.prisma.$executeRaw`UPDATE "Event" SET data = jsonb_set(data, '{sql}', '"SELECT 1"') WHERE chain = ${s} AND seq = 5`;
    const r = await api.http.get(`/v1/sessions/${s}/verify`).set('Authorization', auditor).expect(200);
    expect(r.body).toMatchObject({ valid: false, brokenAt: 5 });
    expect(r.body.reason).toMatch(/modified/);
  });

  it('reports a deleted middle event', async () => {
    const s = rec.newSession();
    const evs = rec.richSession(s);
    await rec.publish(evs);
    await rec.waitStored([s], evs.length);
    await rec.prisma.$executeRaw`DELETE FROM "Event" WHERE chain = ${s} AND seq = 7`;
    const r = await api.http.get(`/v1/sessions/${s}/verify`).set('Authorization', auditor).expect(200);
    expect(r.body).toMatchObject({ valid: false, brokenAt: 8 });
  });

  it('detects a truncated tail through the signed checkpoint, even when the session head was rewritten too', async () => {
    const s = rec.newSession();
    const evs = rec.richSession(s);
    await rec.publish(evs);
    await rec.waitStored([s], evs.length);
    expect(await rec.recorders[0].checkpoint()).toBeTruthy();
    const ok = await api.http.get(`/v1/sessions/${s}/verify`).set('Authorization', auditor).expect(200);
    expect(ok.body).toMatchObject({ valid: true, checkpoint: { seq: evs.length, signatureValid: true } });

    // The attacker removes the last three events and makes the session row agree.
    const keep = evs.length - 3;
    await rec.prisma.$executeRaw`DELETE FROM "Event" WHERE chain = ${s} AND seq > ${keep}`;
    const tail = await rec.prisma.event.findFirstOrThrow({ where: { chain: s, seq: keep } });
    await rec.prisma.session.update({ where: { id: s }, data: { lastSeq: keep, lastHash: tail.hash, events: keep } });
    const r = await api.http.get(`/v1/sessions/${s}/verify`).set('Authorization', auditor).expect(200);
    expect(r.body).toMatchObject({ valid: false, events: keep, brokenAt: keep + 1 });
    expect(r.body.reason).toMatch(/checkpoint/);
  });

  it('reports a cut tail against the session head without a checkpoint', async () => {
    const s = rec.newSession();
    const evs = rec.richSession(s);
    await rec.publish(evs);
    await rec.waitStored([s], evs.length);
    await rec.prisma.$executeRaw`DELETE FROM "Event" WHERE chain = ${s} AND seq = ${evs.length}`;
    const r = await api.http.get(`/v1/sessions/${s}/verify`).set('Authorization', auditor).expect(200);
    expect(r.body).toMatchObject({ valid: false, brokenAt: evs.length });
  });

  it('shows a caller without the auditor role their own sessions only; others answer 404 like missing ones', async () => {
    await api.http.get('/v1/sessions').expect(401);
    const list = await api.http.get('/v1/sessions').set('Authorization', user).expect(200);
    expect(list.body.find((x: { id: string }) => x.id === sid)).toBeUndefined();
    // asking for another identity's sessions gives none, not theirs
    const carol = await api.http.get('/v1/sessions').query({ identity: 'carol' }).set('Authorization', user).expect(200);
    expect(carol.body).toEqual([]);
    for (const path of [`/v1/sessions/${sid}`, `/v1/sessions/${sid}/events`, `/v1/sessions/${sid}/events.jsonl`, `/v1/sessions/${sid}/verify`, '/v1/sessions/control-plane/verify']) {
      const r = await api.http.get(path).set('Authorization', user).expect(404);
      expect(r.body.error.code).toBe('not_found');
    }
    // their own: a session recorded under their subject
    const me = await api.http.get('/v1/me').set('Authorization', user).expect(200);
    const own = rec.newSession();
    const evs = rec.richSession(own, me.body.subject ?? me.body.identity?.subject);
    await rec.publish(evs);
    await rec.waitStored([own], evs.length);
    const mine = await api.http.get('/v1/sessions').set('Authorization', user).expect(200);
    expect(mine.body.map((x: { id: string }) => x.id)).toEqual([own]);
    await api.http.get(`/v1/sessions/${own}`).set('Authorization', user).expect(200);
    await api.http.get(`/v1/sessions/${own}/verify`).set('Authorization', user).expect(200);
  });

  it('GET /v1/sessions/{id}: one timeline item per statement — SQL, decision and rule, approval (who, when, comment), results with the kept rows', async () => {
    const s = rec.newSession();
    const returned = [{ columns: [{ name: 'name', typeOid: 25 }, { name: 'email', typeOid: 25, masking: { by: 'rule', rule: 'emails', strategy: 'partial' } }], rows: [['Ann', 'a**@x.test']], masked: [[1]] }];
    const base = rec.richSession(s);
    const extra = [
      rec.event(s, base.length, 'statement', { sql: 'SELECT name, email FROM customers LIMIT 1', protocol: 'simple', action: 'allow', rule: null, reason: null, tag: 'SELECT 1', rows: 1, durationMs: 1.5, masking: { columns: ['email'], values: 1 }, returned }),
      rec.event(s, base.length + 1, 'session.end', { reason: 'client' }),
    ];
    const evs = [...base.slice(0, -1), ...extra];
    await rec.publish(evs);
    await rec.waitStored([s], evs.length);
    const r = await api.http.get(`/v1/sessions/${s}`).set('Authorization', auditor).expect(200);
    expect(r.body.next).toBeNull();
    const statements = r.body.timeline.filter((i: { kind: string }) => i.kind === 'statement');
    expect(statements.map((i: { sql: string }) => i.sql)).toEqual(['SELECT name, email FROM customers LIMIT 2', 'DROP TABLE customers', 'DELETE FROM customers', 'SELECT * FROM nope', 'SELECT name, email FROM customers LIMIT 1']);
    expect(statements[1].decision).toEqual({ action: 'block', rule: 'no-destructive-ddl', reason: 'DDL is not allowed' });
    expect(statements[2].approval).toMatchObject({ status: 'denied', decidedBy: 'bob', comment: 'no' });
    expect(statements[2].approval.decidedAt).toBeTruthy();
    expect(statements[3].results[0].error.code).toBe('42P01');
    expect(statements[4].results[0]).toMatchObject({ tag: 'SELECT 1', rows: 1, returned });
    expect(r.body.timeline[0]).toMatchObject({ kind: 'event', type: 'session.start' });

    // filters: had=block / approval / masking
    const had = async (h: string) => (await api.http.get('/v1/sessions').query({ had: h, identity: 'carol', limit: 1000 }).set('Authorization', auditor).expect(200)).body.map((x: { id: string }) => x.id);
    expect(await had('block')).toContain(s);
    expect(await had('approval,masking')).toContain(s);
    await api.http.get('/v1/sessions').query({ had: 'everything' }).set('Authorization', auditor).expect(400);

    // downloads: JSONL has the rows, OCSF/CEF a reference to them
    const jsonl = await api.http.get(`/v1/sessions/${s}/events.jsonl`).set('Authorization', auditor).expect(200);
    const lines = jsonl.text.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(evs.length);
    expect(lines.at(-2).data.returned).toEqual(returned);
    for (const format of ['ocsf', 'cef']) {
      let cursor = '';
      let found = '';
      // an empty page: the event waits behind an older write transaction still open on the cluster
      for (let i = 0; i < 600 && !found; i++) {
        const page = await api.http.get('/v1/audit/events').query({ format, limit: 1000, ...(cursor ? { cursor } : {}) }).set('Authorization', auditor).expect(200);
        found = page.text.split('\n').find((l) => l.includes(lines.at(-2).id)) ?? '';
        if (page.headers['x-event-count'] === '0') await new Promise((r) => setTimeout(r, 100));
        cursor = page.headers['x-next-cursor'];
      }
      expect(found).toContain(`/v1/sessions/${s}/events?after`);
      expect(found).not.toContain('a**@x.test');
    }
  });
});
