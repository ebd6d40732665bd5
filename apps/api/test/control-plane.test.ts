import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { SignJWT, createLocalJWKSet, jwtVerify } from 'jose';
import { testKeyPair } from '../../../test/support/test-keys.js';
import { PrismaClient } from '@portcullis/db';
import {
  API_AUDIENCE, GATEWAY_AUDIENCE, configSnapshotSchema, deriveKey, gatewayTokenClaimsSchema, generatePoolKeyPair, natsNames,
  openSealed, parseMasterKey, verifyEventSignature, wireEventSchema, type ConfigSnapshot, type WireEvent,
  verifyConfigSnapshot,
} from '@portcullis/protocol';
import { TokensService } from '../src/auth/tokens.service.js';
import { SigningKeysService } from '../src/auth/signing-keys.service.js';
import { ConfigPublisherService } from '../src/config-publisher/config-publisher.service.js';
import { eventually, startTestApi, type TestApi } from './support.js';

describe('control plane e2e: groups, identities, pools, connections, tokens, snapshots, events', () => {
  let api: TestApi;
  let nc: NatsConnection;
  let kv: KV;
  let prisma: PrismaClient;
  let tokens: TokensService;
  const events: WireEvent[] = [];
  const pool = generatePoolKeyPair();
  const password = `pw-${randomBytes(12).toString('hex')}`;
  let s: string;
  let names: ReturnType<typeof natsNames>;
  let poolName: string;
  let conn: string;
  let eng: string;
  let ops: string;
  let alice: { id: string; subject: string };
  let bob: { id: string; subject: string };
  let aliceToken: { access_token: string; jti: string };

  const snapshot = async (): Promise<ConfigSnapshot> => {
    const e = await kv.get(names.configKey(poolName));
    if (!e || e.operation !== 'PUT') throw new Error('no snapshot yet');
    return configSnapshotSchema.parse(verifyConfigSnapshot(e.value, api.get(ConfigPublisherService).signingKeys()));
  };
  // Rows of this file only (every name it makes carries the suffix): other test files write to the
  // same database at the same time, and a global count raced them.
  const counts = async () => ({
    connections: await prisma.connection.count({ where: { name: { contains: s } } }),
    groups: await prisma.group.count({ where: { name: { contains: s } } }),
    identities: await prisma.identity.count({ where: { subject: { contains: s } } }),
    pools: await prisma.gatewayPool.count({ where: { name: { contains: s } } }),
    policies: await prisma.policy.count({ where: { name: { contains: s } } }),
  });

  beforeAll(async () => {
    api = await startTestApi();
    s = api.suffix;
    names = natsNames(api.prefix);
    poolName = `pool-${s}`;
    conn = `db-${s}`;
    eng = `eng-${s}`;
    ops = `ops-${s}`;
    prisma = api.get(PrismaClient);
    tokens = api.get(TokensService);
    nc = await connect({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' });
    kv = await new Kvm(nc).open(names.configBucket);
    const consumer = await jetstream(nc).consumers.get(names.eventStream, { filter_subjects: names.controlEvents });
    const messages = await consumer.consume();
    void (async () => {
      for await (const m of messages) events.push(wireEventSchema.parse(m.json()));
    })();
  });

  afterAll(async () => {
    if (prisma) {
      const ids = [alice?.id, bob?.id].filter(Boolean) as string[];
      await prisma.token.deleteMany({ where: { identityId: { in: ids } } });
      await prisma.identity.deleteMany({ where: { id: { in: ids } } });
      await prisma.connection.deleteMany({ where: { name: { in: [conn, `${conn}-x`] } } });
      await prisma.group.deleteMany({ where: { name: { in: [eng, ops] } } });
      await prisma.gateway.deleteMany({ where: { pool: poolName } });
      await prisma.gatewayPool.deleteMany({ where: { name: poolName } });
    }
    await nc?.close();
    await api?.close();
  });

  it('admin creates groups with roles', async () => {
    const a = await api.http.post('/v1/groups').set('Authorization', api.admin).send({ name: eng, roles: ['user'], description: 'engineers' });
    expect(a.status).toBe(201);
    expect(a.body).toMatchObject({ name: eng, roles: ['user'], members: [] });
    const b = await api.http.post('/v1/groups').set('Authorization', api.admin).send({ name: ops });
    expect(b.status).toBe(201);
    expect(b.body.roles).toEqual(['user']);
    const dup = await api.http.post('/v1/groups').set('Authorization', api.admin).send({ name: eng });
    expect(dup.status).toBe(409);
  });

  it('admin creates identities and sets group members', async () => {
    const a = await api.http.post('/v1/identities').set('Authorization', api.admin).send({ kind: 'person', subject: `alice-${s}`, email: 'alice@example.com', groups: [eng] });
    expect(a.status).toBe(201);
    expect(a.body.groups).toEqual([eng]);
    alice = { id: a.body.id, subject: a.body.subject };
    const b = await api.http.post('/v1/identities').set('Authorization', api.admin).send({ kind: 'agent', subject: `agent:bob-${s}` });
    expect(b.status).toBe(201);
    bob = { id: b.body.id, subject: b.body.subject };
    const m = await api.http.put(`/v1/groups/${ops}/members`).set('Authorization', api.admin).send({ members: [bob.subject] });
    expect(m.status).toBe(200);
    expect(m.body.members).toEqual([{ subject: bob.subject, kind: 'agent', source: 'manual' }]);
    const unknown = await api.http.put(`/v1/groups/${ops}/members`).set('Authorization', api.admin).send({ members: [`ghost-${s}`] });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toContain(`ghost-${s}`);
    const got = await api.http.get(`/v1/identities/${alice.id}`).set('Authorization', api.admin);
    expect(got.body).toMatchObject({ subject: alice.subject, kind: 'person', disabled: false, groups: [eng] });
    expect((await api.http.get('/v1/identities/not-a-uuid').set('Authorization', api.admin)).status).toBe(404);
  });

  it('a connection in a pool with no key is refused, naming the pool and the route', async () => {
    const before = await counts();
    const res = await api.http.post('/v1/connections').set('Authorization', api.admin).send({ name: conn, pool: poolName, host: '127.0.0.1', database: 'postgres', username: 'postgres', password, allowedGroups: [eng] });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('pool_has_no_key');
    expect(res.body.error.message).toContain(poolName);
    expect(res.body.error.message).toContain(`PUT /v1/gateway-pools/${poolName}`);
    expect(await counts()).toEqual(before);
  });

  it('admin registers the pool key (bad keys refused)', async () => {
    const bad = await api.http.put(`/v1/gateway-pools/${poolName}`).set('Authorization', api.admin).send({ publicKey: 'abc' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('publicKey');
    const res = await api.http.put(`/v1/gateway-pools/${poolName}`).set('Authorization', api.admin).send({ publicKey: pool.publicKey });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: poolName, publicKey: pool.publicKey });
    const list = await api.http.get('/v1/gateway-pools').set('Authorization', api.admin);
    expect(list.body.map((p: { name: string }) => p.name)).toContain(poolName);
  });

  it('admin creates a connection; the password is never returned', async () => {
    const res = await api.http.post('/v1/connections').set('Authorization', api.admin).send({ name: conn, pool: poolName, host: '10.1.2.3', port: 5433, database: 'app', username: 'app_owner', password, allowedGroups: [eng], tls: 'prefer' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: conn, pool: poolName, host: '10.1.2.3', port: 5433, hasSecret: true, allowedGroups: [eng], policy: null });
    expect(JSON.stringify(res.body)).not.toContain(password);
    expect(res.body).not.toHaveProperty('password');
    expect(res.body).not.toHaveProperty('secretCiphertext');
    const row = await prisma.connection.findUniqueOrThrow({ where: { name: conn } });
    expect(row.secretCiphertext).toBeTruthy();
    expect(row.secretCiphertext).not.toContain(password);
    for (const path of ['/v1/connections', `/v1/connections/${conn}`]) {
      const r = await api.http.get(path).set('Authorization', api.admin);
      expect(r.status).toBe(200);
      expect(JSON.stringify(r.body)).not.toContain(password);
    }
  });

  it('the pool snapshot appears in the KV bucket within a second, with the secret sealed', async () => {
    const snap = await eventually(async () => {
      const sn = await snapshot();
      if (!sn.connections.some((c) => c.name === conn)) throw new Error('connection not in snapshot yet');
      return sn;
    }, 1_000);
    expect(snap.pool).toBe(poolName);
    expect(snap.issuer).toBe('portcullis');
    expect(snap.verificationKeys.length).toBeGreaterThan(0);
    const c = snap.connections.find((x) => x.name === conn)!;
    expect(c).toMatchObject({ host: '10.1.2.3', port: 5433, database: 'app', username: 'app_owner', tls: 'prefer', allowedGroups: [eng] });
    expect(c.secret).not.toBeNull();
    expect(openSealed(pool.privateKey, c.secret!, `connection:${conn}`)).toBe(password);
    // The wrong pool key does not open it.
    expect(() => openSealed(generatePoolKeyPair().privateKey, c.secret!, `connection:${conn}`)).toThrow();
    const raw = new TextDecoder().decode((await kv.get(names.configKey(poolName)))!.value);
    expect(raw).not.toContain(password);
    // Event and masking keys are sealed too, and are the ones derived from the master key.
    const master = parseMasterKey(api.masterKey)!;
    expect(openSealed(pool.privateKey, snap.eventKey, 'event-key')).toBe(deriveKey(master, 'event-signing').toString('base64url'));
    expect(openSealed(pool.privateKey, snap.maskingKey, 'masking-key')).toBe(deriveKey(master, 'masking-hmac').toString('base64url'));
  });

  it('revisions increase strictly per pool', async () => {
    const r1 = (await snapshot()).revision;
    await api.get(ConfigPublisherService).publishNow();
    const r2 = (await snapshot()).revision;
    expect(r2).toBeGreaterThan(r1);
    expect((await prisma.gatewayPool.findUniqueOrThrow({ where: { name: poolName } })).revision).toBe(r2);
  });

  it('GET /v1/me with an api token shows identity, groups and roles', async () => {
    aliceToken = await tokens.issueApiToken(alice.id);
    expect(aliceToken.token_type).toBe('Bearer');
    const res = await api.http.get('/v1/me').set('Authorization', `Bearer ${aliceToken.access_token}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ identityId: alice.id, subject: alice.subject, kind: 'person', groups: [eng], roles: ['user'], tokenId: aliceToken.jti, email: 'alice@example.com' });
    // The token verifies with the snapshot's public keys (what gateways use).
    const jwks = createLocalJWKSet({ keys: (await snapshot()).verificationKeys as never });
    const { payload } = await jwtVerify(aliceToken.access_token, jwks, { audience: API_AUDIENCE, issuer: 'portcullis' });
    expect(payload.jti).toBe(aliceToken.jti);
  });

  it('roles come from the groups as they are now: a group change applies to live tokens', async () => {
    const auth = `Bearer ${aliceToken.access_token}`;
    const patched = await api.http.patch(`/v1/groups/${eng}`).set('Authorization', api.admin).send({ roles: ['user', 'auditor'] });
    expect(patched.status).toBe(200);
    expect((await api.http.get('/v1/me').set('Authorization', auth)).body.roles).toEqual(['auditor', 'user']);
    await api.http.patch(`/v1/groups/${eng}`).set('Authorization', api.admin).send({ roles: ['user'] });
    expect((await api.http.get('/v1/me').set('Authorization', auth)).body.roles).toEqual(['user']);
    const list = await api.http.get('/v1/identities').set('Authorization', api.admin);
    expect(list.body.find((i: { id: string }) => i.id === alice.id)).toMatchObject({ subject: alice.subject, groups: [eng] });
  });

  it('non-admins get 403 on admin routes and see only their connections, without target details', async () => {
    const auth = `Bearer ${aliceToken.access_token}`;
    for (const [method, path] of [['get', '/v1/identities'], ['post', '/v1/groups'], ['get', '/v1/gateways'], ['get', '/v1/policies'], ['delete', `/v1/connections/${conn}`]] as const) {
      const r = await api.http[method](path).set('Authorization', auth).send({});
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body.error.code).toBe('forbidden');
    }
    const list = await api.http.get('/v1/connections').set('Authorization', auth);
    expect(list.status).toBe(200);
    expect(list.body).toEqual([{ name: conn, type: 'postgres', kind: 'postgres', pool: poolName, policy: null, recording: 'required', approvalMode: 'wait', access: 'group' }]);
  });

  it('gateway credentials: allowed group → 201 with uri; other identity → 403 naming the connection; unknown → 404', async () => {
    const res = await api.http.post(`/v1/connections/${conn}/credentials`).set('Authorization', `Bearer ${aliceToken.access_token}`).send({ mode: 'fail-fast' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ host: '127.0.0.1', port: 15432, database: conn });
    expect(res.body.uri).toBe(`postgresql://${encodeURIComponent(alice.subject)}:${res.body.token}@127.0.0.1:15432/${conn}?sslmode=prefer`);
    expect(JSON.stringify(res.body)).not.toContain('10.1.2.3');
    const jwks = createLocalJWKSet({ keys: (await snapshot()).verificationKeys as never });
    const { payload } = await jwtVerify(res.body.token, jwks, { audience: GATEWAY_AUDIENCE, issuer: 'portcullis' });
    const claims = gatewayTokenClaimsSchema.parse(payload);
    expect(claims).toMatchObject({ typ: 'gateway', cn: conn, sub: alice.subject, pid: alice.id, groups: [eng], amode: 'fail-fast' });
    expect(payload.exp! - payload.iat!).toBe(900);
    // A gateway credential is not an api token.
    expect((await api.http.get('/v1/me').set('Authorization', `Bearer ${res.body.token}`)).status).toBe(401);

    const bobToken = await tokens.issueApiToken(bob.id);
    const denied = await api.http.post(`/v1/connections/${conn}/credentials`).set('Authorization', `Bearer ${bobToken.access_token}`);
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('connection_not_allowed');
    expect(denied.body.error.message).toContain(`"${conn}"`);
    const missing = await api.http.post(`/v1/connections/nope-${s}/credentials`).set('Authorization', `Bearer ${aliceToken.access_token}`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toContain(`nope-${s}`);
    expect((await api.http.get(`/v1/connections/${conn}`).set('Authorization', `Bearer ${bobToken.access_token}`)).status).toBe(403);
  });

  it('an approved, running access request allows a credential bounded by grantedUntil', async () => {
    const grantedUntil = new Date(Date.now() + 120_000);
    const ar = await prisma.accessRequest.create({ data: { identity: bob.subject, connection: conn, reason: 'test', durationSeconds: 120, status: 'approved', grantedUntil } });
    try {
      const bobToken = await tokens.issueApiToken(bob.id);
      const res = await api.http.post(`/v1/connections/${conn}/credentials`).set('Authorization', `Bearer ${bobToken.access_token}`);
      expect(res.status).toBe(201);
      const { payload } = await jwtVerify(res.body.token, createLocalJWKSet({ keys: (await snapshot()).verificationKeys as never }), { audience: GATEWAY_AUDIENCE });
      expect(payload.grant).toBe(ar.id);
      expect(payload.exp).toBeLessThanOrEqual(Math.floor(grantedUntil.getTime() / 1000));
    } finally {
      await prisma.accessRequest.delete({ where: { id: ar.id } });
    }
  });

  it('bad input gets a 4xx with the reason and changes nothing', async () => {
    const before = await counts();
    const malformed = await api.http.post('/v1/connections').set('Authorization', api.admin).set('Content-Type', 'application/json').send('{"name": "x",');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe('malformed_json');
    const unknownField = await api.http.post('/v1/connections').set('Authorization', api.admin).send({ name: `${conn}-x`, pool: poolName, host: 'h', database: 'd', username: 'u', colour: 'blue' });
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.error).toEqual({ code: 'validation_failed', message: 'colour: unknown field' });
    const badType = await api.http.post('/v1/connections').set('Authorization', api.admin).send({ name: `${conn}-x`, pool: poolName, host: 'h', database: 'd', username: 'u', port: '5432' });
    expect(badType.status).toBe(400);
    expect(badType.body.error.message).toContain('port: expected number');
    const unknownGroup = await api.http.post('/v1/connections').set('Authorization', api.admin).send({ name: `${conn}-x`, pool: poolName, host: 'h', database: 'd', username: 'u', allowedGroups: [`nope-${s}`] });
    expect(unknownGroup.status).toBe(400);
    expect(unknownGroup.body.error.message).toContain(`nope-${s}`);
    const dup = await api.http.post('/v1/connections').set('Authorization', api.admin).send({ name: conn, pool: poolName, host: 'h', database: 'd', username: 'u' });
    expect(dup.status).toBe(409);
    const patchUnknown = await api.http.patch(`/v1/connections/nope-${s}`).set('Authorization', api.admin).send({ port: 1 });
    expect(patchUnknown.status).toBe(404);
    expect(patchUnknown.body.error.message).toContain(`nope-${s}`);
    const wrongType = await api.http.post('/v1/groups').set('Authorization', api.admin).set('Content-Type', 'text/plain').send('hello');
    expect(wrongType.status).toBe(415);
    const badRole = await api.http.post('/v1/groups').set('Authorization', api.admin).send({ name: `x-${s}`, roles: ['root'] });
    expect(badRole.status).toBe(400);
    expect(badRole.body.error.message).toContain('roles.0');
    expect(await counts()).toEqual(before);
    const row = await prisma.connection.findUniqueOrThrow({ where: { name: conn } });
    expect(row.port).toBe(5433);
  });

  it('forged, expired and revoked tokens are refused with 401 and the reason', async () => {
    const keys = api.get(SigningKeysService);
    const other = testKeyPair('EdDSA');
    const now = Math.floor(Date.now() / 1000);
    const claims = { typ: 'api', pid: alice.id, kind: 'person', groups: [eng], roles: ['admin'] };
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: keys.activeKey.kid }).setIssuer('portcullis').setAudience(API_AUDIENCE)
      .setSubject(alice.subject).setJti(aliceToken.jti).setIssuedAt(now).setExpirationTime(now + 600).sign(other.privateKey);
    const f = await api.http.get('/v1/identities').set('Authorization', `Bearer ${forged}`);
    expect(f.status).toBe(401);
    expect(f.body.error).toMatchObject({ code: 'invalid_token' });
    expect(f.body.error.message).toContain('signature');

    const expired = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: keys.activeKey.kid }).setIssuer('portcullis').setAudience(API_AUDIENCE)
      .setSubject(alice.subject).setJti(aliceToken.jti).setIssuedAt(now - 600).setExpirationTime(now - 60).sign(keys.activeKey.privateKey);
    const e = await api.http.get('/v1/me').set('Authorization', `Bearer ${expired}`);
    expect(e.status).toBe(401);
    expect(e.body.error.code).toBe('token_expired');

    // A validly signed token with no Token row (never issued) is refused too.
    const unissued = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: keys.activeKey.kid }).setIssuer('portcullis').setAudience(API_AUDIENCE)
      .setSubject(alice.subject).setJti(crypto.randomUUID()).setIssuedAt(now).setExpirationTime(now + 600).sign(keys.activeKey.privateKey);
    expect((await api.http.get('/v1/me').set('Authorization', `Bearer ${unissued}`)).status).toBe(401);
  });

  it('revocation: owner revokes → 401 token_revoked, and the jti is in the next snapshot', async () => {
    const bobToken = await tokens.issueApiToken(bob.id);
    const notOwner = await api.http.post('/v1/auth/revoke').set('Authorization', `Bearer ${bobToken.access_token}`).send({ jti: aliceToken.jti });
    expect(notOwner.status).toBe(403);
    const res = await api.http.post('/v1/auth/revoke').set('Authorization', `Bearer ${aliceToken.access_token}`).send({ jti: aliceToken.jti });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ jti: aliceToken.jti, revokedBy: alice.subject, alreadyRevoked: false });
    const after = await api.http.get('/v1/me').set('Authorization', `Bearer ${aliceToken.access_token}`);
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe('token_revoked');
    await eventually(async () => expect((await snapshot()).revokedTokenIds).toContain(aliceToken.jti), 1_000);
    const again = await api.http.post('/v1/auth/revoke').set('Authorization', api.admin).send({ jti: aliceToken.jti });
    expect(again.body.alreadyRevoked).toBe(true);
  });

  it('a revoked credential stays on the snapshot a while past its expiry: gateways verify expiry with a clock tolerance, and their clock may lag', async () => {
    const t = await tokens.issueApiToken(alice.id);
    // expired two seconds ago, within any gateway's tolerance; revoked
    await prisma.token.update({ where: { id: t.jti }, data: { expiresAt: new Date(Date.now() - 2000), revokedAt: new Date(), revokedBy: 'test' } });
    await api.get(ConfigPublisherService).publishNow();
    expect((await snapshot()).revokedTokenIds).toContain(t.jti);
    // long gone: off the list
    await prisma.token.update({ where: { id: t.jti }, data: { expiresAt: new Date(Date.now() - 3600_000) } });
    await api.get(ConfigPublisherService).publishNow();
    expect((await snapshot()).revokedTokenIds).not.toContain(t.jti);
  });

  it('a heartbeat on NATS shows up in GET /v1/gateways', async () => {
    const id = `gw-${s}`;
    const now = new Date().toISOString();
    nc.publish(names.heartbeat(poolName, id), JSON.stringify({ id, pool: poolName, version: '0.1.0', address: '10.0.0.9:15432', liveSessions: 3, configRevision: 7, startedAt: now, time: now }));
    // A heartbeat whose body disagrees with its subject is ignored.
    nc.publish(names.heartbeat(poolName, `${id}-spoof`), JSON.stringify({ id: `${id}-other`, pool: poolName, version: 'x', liveSessions: 0, configRevision: null, startedAt: now, time: now }));
    const gw = await eventually(async () => {
      const res = await api.http.get('/v1/gateways').set('Authorization', api.admin);
      const g = (res.body as { id: string }[]).find((x) => x.id === id);
      if (!g) throw new Error('gateway not listed yet');
      return g;
    }, 1_000);
    expect(gw).toMatchObject({ id, pool: poolName, version: '0.1.0', address: '10.0.0.9:15432', liveSessions: 3, configRevision: 7, live: true });
    expect(await prisma.gateway.findUnique({ where: { id: `${id}-other` } })).toBeNull();
  });

  it('password change reseals; delete drops the connection from the snapshot', async () => {
    const next = `pw2-${randomBytes(8).toString('hex')}`;
    const res = await api.http.patch(`/v1/connections/${conn}`).set('Authorization', api.admin).send({ password: next, port: 6543 });
    expect(res.status).toBe(200);
    expect(JSON.stringify(res.body)).not.toContain(next);
    await eventually(async () => {
      const c = (await snapshot()).connections.find((x) => x.name === conn)!;
      expect(c.port).toBe(6543);
      expect(openSealed(pool.privateKey, c.secret!, `connection:${conn}`)).toBe(next);
    }, 1_000);
    const del = await api.http.delete(`/v1/connections/${conn}`).set('Authorization', api.admin);
    expect(del.status).toBe(204);
    await eventually(async () => expect((await snapshot()).connections.map((c) => c.name)).not.toContain(conn), 1_000);
    expect((await api.http.get(`/v1/connections/${conn}`).set('Authorization', api.admin)).status).toBe(404);
  });

  it('identities with live tokens cannot be deleted; disabling revokes their tokens', async () => {
    const t = await tokens.issueApiToken(bob.id);
    const del = await api.http.delete(`/v1/identities/${bob.id}`).set('Authorization', api.admin);
    expect(del.status).toBe(409);
    expect(del.body.error.code).toBe('identity_has_tokens');
    const dis = await api.http.patch(`/v1/identities/${bob.id}`).set('Authorization', api.admin).send({ disabled: true });
    expect(dis.status).toBe(200);
    expect(dis.body.disabled).toBe(true);
    const me = await api.http.get('/v1/me').set('Authorization', `Bearer ${t.access_token}`);
    expect(me.status).toBe(401);
    await eventually(async () => expect((await snapshot()).revokedTokenIds).toContain(t.jti), 1_000);
    await expect(tokens.issueApiToken(bob.id)).rejects.toThrow(/disabled/);
  });

  it('every change produced a signed control-plane event on JetStream, without secrets', async () => {
    const key = deriveKey(parseMasterKey(api.masterKey)!, 'event-signing');
    await eventually(() => {
      const types = new Set(events.map((e) => `${e.type}:${String(e.data.action)}`));
      for (const t of ['group.changed:create', 'group.changed:set-members', 'identity.changed:create', 'identity.changed:update', 'connection.changed:create-pool', 'connection.changed:create', 'connection.changed:update', 'connection.changed:delete', 'token.issued:issue', 'token.revoked:revoke']) {
        expect(types, t).toContain(t);
      }
    }, 2_000);
    for (const e of events) {
      expect(verifyEventSignature(e, key)).toBe(true);
      expect(e).toMatchObject({ sessionId: null, seq: 0, connection: null, gateway: null });
    }
    const created = events.find((e) => e.type === 'connection.changed' && e.data.action === 'create' && e.data.target === conn)!;
    expect(created.identity).toBe('bootstrap');
    expect((created.data.after as { hasSecret: boolean }).hasSecret).toBe(true);
    const all = JSON.stringify(events);
    expect(all).not.toContain(password);
    expect(all).not.toContain(aliceToken.access_token);
    expect(all).not.toContain('secretCiphertext');
  });
});
