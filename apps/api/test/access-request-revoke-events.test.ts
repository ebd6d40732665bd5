import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { PrismaClient } from '@portcullis/db';
import { configSnapshotSchema, generatePoolKeyPair, generateGatewayCa, generateSshEd25519, natsNames, verifyConfigSnapshot } from '@portcullis/protocol';
import { encodeCursor } from '../src/audit/export-cursor.js';
import { ConfigPublisherService } from '../src/config-publisher/config-publisher.service.js';
import { TokensService } from '../src/auth/tokens.service.js';
import { startTestApi, type TestApi } from './support.js';
import { RecordingFixture } from '../../../test/support/recorder-fixture.js';

type Exported = { id: string; type: string; identity: string | null; data: { action?: string; target?: string; after?: Record<string, unknown> } };

/**
 * Revoking an access grant (POST /v1/access-requests/{id}/revoke) revokes every credential minted under it —
 * Postgres passwords, SSH certificates, static kubeconfig tokens — and says so on the audit trail a SIEM
 * reads (GET /v1/audit/events, written by a real recorder from JetStream): one token.revoked per credential.
 */
describe('revoking an access grant: one token.revoked per credential minted under it', () => {
  let api: TestApi;
  let rec: RecordingFixture;
  let prisma: PrismaClient;
  let s: string;
  let auditor: string;
  let start: string;
  const ids: string[] = [];
  const conns: Record<'pg' | 'ssh' | 'kube', string> = { pg: '', ssh: '', kube: '' };
  const people: Record<'bob' | 'carol' | 'erin', { id: string; subject: string; token: string }> = {} as never;
  const pool = generatePoolKeyPair();
  let poolName: string;

  beforeAll(async () => {
    api = await startTestApi();
    rec = await new RecordingFixture(api).start(1);
    prisma = api.get(PrismaClient);
    s = api.suffix;
    poolName = `arv-${s}`;
    auditor = await rec.tokenWithRoles(['auditor']);
    const last = await prisma.event.findFirst({ orderBy: [{ txid: 'desc' }, { position: 'desc' }], select: { txid: true, position: true } });
    start = encodeCursor(last ?? { txid: 0n, position: 0n });
    const ok = (r: { status: number; body: unknown }, status: number) => {
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      return r.body as Record<string, unknown>;
    };
    ok(await api.http.put(`/v1/gateway-pools/${poolName}`).set('Authorization', api.admin).send({ publicKey: pool.publicKey }), 201);
    ok(await api.http.post('/v1/groups').set('Authorization', api.admin).send({ name: `arv-approvers-${s}`, roles: ['approver'] }), 201);
    ok(await api.http.post('/v1/groups').set('Authorization', api.admin).send({ name: `arv-eng-${s}`, roles: ['user'] }), 201);
    ok(await api.http.post('/v1/groups').set('Authorization', api.admin).send({ name: `arv-dba-${s}`, roles: ['user'] }), 201);
    ok(await api.http.post('/v1/policies').set('Authorization', api.admin).send({ name: `arv-policy-${s}`, guardrails: [], approval: { approvers: [`arv-approvers-${s}`] } }), 201);
    // three connections of the three types, for a group nobody is in: access comes from grants only
    const base = { pool: poolName, allowedGroups: [`arv-dba-${s}`], policy: `arv-policy-${s}` };
    conns.pg = `arv-db-${s}`;
    conns.ssh = `arv-box-${s}`;
    conns.kube = `arv-k8s-${s}`;
    ok(await api.http.post('/v1/connections').set('Authorization', api.admin).send({ ...base, name: conns.pg, host: '127.0.0.1', port: 5432, database: 'postgres', username: 'postgres', password: 'x' }), 201);
    ok(await api.http.post('/v1/connections').set('Authorization', api.admin).send({ ...base, name: conns.ssh, type: 'ssh', host: '10.0.0.5', username: 'deploy', secret: { password: 'p' }, hostKeys: [generateSshEd25519('host').publicKey] }), 201);
    const ca = await generateGatewayCa('test cluster');
    ok(await api.http.post('/v1/connections').set('Authorization', api.admin).send({ ...base, name: conns.kube, type: 'kubernetes', server: 'https://10.0.0.9:6443', caPem: ca.caPem, secret: { token: 't' } }), 201);
    for (const [who, group] of [['bob', `arv-approvers-${s}`], ['carol', `arv-eng-${s}`], ['erin', `arv-eng-${s}`]] as const) {
      const identity = ok(await api.http.post('/v1/identities').set('Authorization', api.admin).send({ kind: 'person', subject: `arv-${who}-${s}`, groups: [group] }), 201);
      ids.push(identity.id as string);
      people[who] = { id: identity.id as string, subject: identity.subject as string, token: `Bearer ${(await api.get(TokensService).issueApiToken(identity.id as string)).access_token}` };
    }
  });

  afterAll(async () => {
    if (prisma) {
      await prisma.token.deleteMany({ where: { identityId: { in: ids } } });
      await prisma.accessRequest.deleteMany({ where: { connection: { in: Object.values(conns) } } });
      await prisma.identity.deleteMany({ where: { id: { in: ids } } });
      await prisma.connection.deleteMany({ where: { pool: poolName } });
      await prisma.group.deleteMany({ where: { name: { in: [`arv-approvers-${s}`, `arv-eng-${s}`, `arv-dba-${s}`] } } });
      await prisma.policy.deleteMany({ where: { name: `arv-policy-${s}` } });
      await prisma.gatewayPool.deleteMany({ where: { name: poolName } });
    }
    await rec?.close();
    await api?.close();
  });

  /** Every event the export gives after `start`, in its order (JSON lines, as a SIEM pulls them). */
  async function exported(): Promise<Exported[]> {
    const out: Exported[] = [];
    let cursor = start;
    for (;;) {
      const r = await api.http.get('/v1/audit/events').query({ cursor, limit: 1000, format: 'jsonl' }).set('Authorization', auditor).expect(200);
      const lines = r.text.split('\n').filter(Boolean);
      out.push(...lines.map((l) => JSON.parse(l) as Exported));
      cursor = r.headers['x-next-cursor'] as string;
      if (lines.length < 1000) return out;
    }
  }

  /** The export once `ready` holds of it (the recorder writes asynchronously). */
  async function exportedUntil(ready: (events: Exported[]) => boolean): Promise<Exported[]> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const events = await exported();
      if (ready(events)) return events;
      if (Date.now() > deadline) throw new Error(`the export did not get there: ${JSON.stringify(events.map((e) => [e.type, e.data.action, e.data.target]))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function granted(who: 'carol' | 'erin', connection: string): Promise<string> {
    const req = await api.http.post('/v1/access-requests').set('Authorization', people[who].token).send({ connection, durationSeconds: 600, reason: 'arv test' });
    expect(req.status, JSON.stringify(req.body)).toBe(201);
    expect((await api.http.post(`/v1/access-requests/${req.body.id}/approve`).set('Authorization', people.bob.token).send({})).status).toBe(200);
    return req.body.id as string;
  }

  const revokedOf = (events: Exported[], jti: string) => events.filter((e) => e.type === 'token.revoked' && e.data.target === jti);

  it('a Postgres credential, an SSH certificate and a static kubeconfig token each get a token.revoked naming the grant and reason; another grant\'s credential and an already revoked one get none', async () => {
    const g = { pg: await granted('carol', conns.pg), ssh: await granted('carol', conns.ssh), kube: await granted('carol', conns.kube), other: await granted('erin', conns.pg) };
    const cred = async (who: 'carol' | 'erin') => {
      const r = await api.http.post(`/v1/connections/${conns.pg}/credentials`).set('Authorization', people[who].token).send({});
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body as { jti: string; grant: string };
    };
    const pgCred = await cred('carol');
    const pgRevokedFirst = await cred('carol');
    const erinCred = await cred('erin');
    expect([pgCred.grant, erinCred.grant]).toEqual([g.pg, g.other]);
    const cert = await api.http.post(`/v1/connections/${conns.ssh}/ssh-certificate`).set('Authorization', people.carol.token).send({ publicKey: generateSshEd25519('carol').publicKey });
    expect(cert.status, JSON.stringify(cert.body)).toBe(201);
    const kube = await api.http.get(`/v1/connections/${conns.kube}/kubeconfig`).query({ token: 'static' }).set('Authorization', people.carol.token);
    expect(kube.status).toBe(200);
    const kubeJti = (await prisma.token.findFirstOrThrow({ where: { connection: conns.kube, identityId: people.carol.id } })).id;
    // one of the grant's credentials revoked by id before the grant: its own token.revoked, and no second one
    expect((await api.http.post('/v1/auth/revoke').set('Authorization', people.carol.token).send({ jti: pgRevokedFirst.jti })).status).toBe(200);

    const minted = { [g.pg]: pgCred.jti, [g.ssh]: cert.body.jti as string, [g.kube]: kubeJti };
    for (const [id, reason] of [[g.pg, 'incident closed'], [g.ssh, 'host handed back'], [g.kube, null]] as const) {
      const r = await api.http.post(`/v1/access-requests/${id}/revoke`).set('Authorization', people.bob.token).send(reason ? { reason } : {});
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }

    const events = await exportedUntil((evs) => Object.values(minted).every((jti) => revokedOf(evs, jti).length > 0) && revokedOf(evs, pgRevokedFirst.jti).length > 0);
    for (const [id, connection, reason] of [[g.pg, conns.pg, 'incident closed'], [g.ssh, conns.ssh, 'host handed back'], [g.kube, conns.kube, null]] as const) {
      const jti = minted[id]!;
      const revoked = revokedOf(events, jti);
      expect(revoked).toHaveLength(1);
      expect(revoked[0]).toMatchObject({
        identity: people.bob.subject,
        data: { action: 'revoke', target: jti, before: { revokedAt: null }, after: { kind: 'gateway', identity: people.carol.subject, connection, reason: 'grant_revoked', grant: id, revokeReason: reason, revokedAt: expect.any(String) } },
      });
      // after the grant's own revocation event, which lists the credentials that died with it
      const grantEvent = events.findIndex((e) => e.type === 'access-request.changed' && e.data.action === 'revoke' && e.data.target === id);
      expect(grantEvent).toBeGreaterThanOrEqual(0);
      expect(events[grantEvent]!.data.after).toMatchObject({ credentials: [jti] });
      expect(events.indexOf(revoked[0]!)).toBeGreaterThan(grantEvent);
      const row = await prisma.token.findUniqueOrThrow({ where: { id: jti } });
      expect(row).toMatchObject({ grantId: id, revokedBy: people.bob.subject });
      expect(row.revokedAt?.toISOString()).toBe(revoked[0]!.data.after!.revokedAt);
    }
    const early = revokedOf(events, pgRevokedFirst.jti);
    expect(early).toHaveLength(1);
    expect(early[0]!.identity).toBe(people.carol.subject);
    expect(revokedOf(events, erinCred.jti)).toEqual([]);
    expect((await prisma.token.findUniqueOrThrow({ where: { id: erinCred.jti } })).revokedAt).toBeNull();

    // gateways learn it from the snapshot: the revoked grants; their credentials are not listed a second time
    await api.get(ConfigPublisherService).publishNow();
    const kv = await new Kvm(jetstream(rec.nc)).open(natsNames(api.prefix).configBucket);
    const entry = await kv.get(natsNames(api.prefix).configKey(poolName));
    const snapshot = configSnapshotSchema.parse(verifyConfigSnapshot(entry!.value, api.get(ConfigPublisherService).signingKeys()));
    expect(snapshot.revokedGrants).toEqual(expect.arrayContaining([g.pg, g.ssh, g.kube]));
    expect(snapshot.revokedGrants).not.toContain(g.other);
    expect(snapshot.revokedTokenIds).not.toEqual(expect.arrayContaining([pgCred.jti]));
  });

  it('credentials minted while the grant is being revoked: every one handed out is revoked and on the export, none slips through', async () => {
    const id = await granted('carol', conns.pg);
    const mint = () => api.http.post(`/v1/connections/${conns.pg}/credentials`).set('Authorization', people.carol.token).send({});
    const before = await Promise.all(Array.from({ length: 4 }, mint));
    const [during, revoke] = await Promise.all([
      Promise.all(Array.from({ length: 16 }, mint)),
      api.http.post(`/v1/access-requests/${id}/revoke`).set('Authorization', people.bob.token).send({ reason: 'race' }),
    ]);
    expect(revoke.status).toBe(200);
    const handedOut = [...before, ...during].filter((r) => r.status === 201).map((r) => r.body.jti as string);
    // a request that lost the race is refused (403), never answered with a credential that escapes revocation
    for (const r of during) expect([201, 403]).toContain(r.status);
    expect(handedOut.length).toBeGreaterThanOrEqual(4);
    const events = await exportedUntil((evs) => handedOut.every((jti) => revokedOf(evs, jti).length > 0));
    const revokedUnderGrant = events.filter((e) => e.type === 'token.revoked' && e.data.after?.grant === id).map((e) => e.data.target);
    expect(new Set(revokedUnderGrant)).toEqual(new Set(handedOut));
    expect(revokedUnderGrant).toHaveLength(handedOut.length);
    const live = await prisma.token.count({ where: { grantId: id, revokedAt: null } });
    expect(live).toBe(0);
  });
});
