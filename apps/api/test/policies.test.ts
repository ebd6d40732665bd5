import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { PrismaClient } from '@portcullis/db';
import { configSnapshotSchema, generatePoolKeyPair, natsNames, verifyConfigSnapshot } from '@portcullis/protocol';
import { ConfigPublisherService } from '../src/config-publisher/config-publisher.service.js';
import { eventually, startTestApi, type TestApi } from './support.js';

const doc = (name: string) => ({
  name,
  guardrails: [
    { name: 'no-destructive-ddl', action: 'block', match: { statements: ['DROP', 'TRUNCATE'] } },
    { name: 'bulk-writes', action: 'require_approval', match: { statements: ['DELETE', 'UPDATE'], unbounded: true } },
    { name: 'no-rm-root', action: 'block', reason: 'No recursive deletes at the top.', match: { commands: ['rm'], args: ['-r', '-R', '--recursive'], paths: ['/', '/*'] } },
    { name: 'sudo-needs-approval', action: 'require_approval', match: { commands: ['sudo'] } },
    { name: 'no-etc-writes', action: 'block', match: { files: { operations: ['write'], paths: ['/etc/**'] } } },
  ],
  dynamicSql: 'block',
  masking: [{ name: 'emails', columns: ['email'], strategy: 'partial' }],
  approval: { approvers: ['approvers'], timeoutSeconds: 300 },
});

describe('policies e2e: JSON and YAML documents, versions, evaluate, snapshot', () => {
  let api: TestApi;
  let prisma: PrismaClient;
  let nc: NatsConnection;
  let kv: KV;
  let p1: string;
  let p2: string;
  let poolName: string;
  let conn: string;

  beforeAll(async () => {
    api = await startTestApi();
    prisma = api.get(PrismaClient);
    p1 = `pol-${api.suffix}`;
    p2 = `yaml-${api.suffix}`;
    poolName = `ppool-${api.suffix}`;
    conn = `pdb-${api.suffix}`;
    nc = await connect({ servers: 'nats://127.0.0.1:4222' });
    kv = await new Kvm(nc).open(natsNames(api.prefix).configBucket);
  });

  afterAll(async () => {
    if (prisma) {
      await prisma.connection.deleteMany({ where: { name: conn } });
      await prisma.gatewayPool.deleteMany({ where: { name: poolName } });
      await prisma.policy.deleteMany({ where: { name: { in: [p1, p2] } } });
    }
    await nc?.close();
    await api?.close();
  });

  it('POST a JSON policy → 201 version 1', async () => {
    const res = await api.http.post('/v1/policies').set('Authorization', api.admin).send(doc(p1));
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: p1, version: 1, document: doc(p1) });
    expect((await api.http.post('/v1/policies').set('Authorization', api.admin).send(doc(p1))).status).toBe(409);
  });

  it('PUT a YAML policy creates it; PUT again makes version 2', async () => {
    const yaml = `name: ${p2}\nguardrails:\n  - name: no-drop\n    action: block\n    match:\n      statements: [DROP]\ndynamicSql: block\nmasking: []\n`;
    const res = await api.http.put(`/v1/policies/${p2}`).set('Authorization', api.admin).set('Content-Type', 'application/yaml').send(yaml);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: p2, version: 1 });
    expect(res.body.document.guardrails[0]).toEqual({ name: 'no-drop', action: 'block', match: { statements: ['DROP'] } });
    const again = await api.http.put(`/v1/policies/${p2}`).set('Authorization', api.admin).set('Content-Type', 'text/yaml').send(yaml.replace('[DROP]', '[DROP, TRUNCATE]'));
    expect(again.status).toBe(200);
    expect(again.body.version).toBe(2);
    const versions = await api.http.get(`/v1/policies/${p2}/versions`).set('Authorization', api.admin);
    expect(versions.body.map((v: { version: number }) => v.version)).toEqual([2, 1]);
    const v1 = await api.http.get(`/v1/policies/${p2}?version=1`).set('Authorization', api.admin);
    expect(v1.body.document.guardrails[0].match.statements).toEqual(['DROP']);
  });

  it('bad documents get a 400 naming the bad path and change nothing', async () => {
    // what this test's requests could write: policies under the names they use (other files share the database
    // and write policies of their own at the same time: a count of the whole table changed under it)
    const names = [p1, 'other-name'];
    const rows = async () => ({
      policies: await prisma.policy.count({ where: { name: { in: names } } }),
      versions: await prisma.policyVersion.count({ where: { policy: { name: { in: names } } } }),
    });
    const before = await rows();
    const bad = { ...doc(p1), guardrails: [{ name: 'x', action: 'explode', match: { statements: ['DROP'] } }] };
    const r1 = await api.http.put(`/v1/policies/${p1}`).set('Authorization', api.admin).send(bad);
    expect(r1.status).toBe(400);
    expect(r1.body.error.code).toBe('invalid_policy');
    expect(r1.body.error.message).toContain('guardrails.0.action');
    const r2 = await api.http.put(`/v1/policies/${p1}`).set('Authorization', api.admin).send(doc('other-name'));
    expect(r2.status).toBe(400);
    expect(r2.body.error.message).toContain('name');
    const r3 = await api.http.put(`/v1/policies/${p1}`).set('Authorization', api.admin).set('Content-Type', 'application/yaml').send('name: [unclosed');
    expect(r3.status).toBe(400);
    expect(r3.body.error.code).toBe('malformed_yaml');
    const r4 = await api.http.post('/v1/policies').set('Authorization', api.admin).send({ ...doc(p1), extra: true });
    expect(r4.status).toBe(400);
    expect(r4.body.error.message).toContain('extra');
    const r5 = await api.http.post('/v1/policies').set('Authorization', api.admin).set('Content-Type', 'application/json').send('{"name":');
    expect(r5.status).toBe(400);
    expect(r5.body.error.code).toBe('malformed_json');
    expect(await rows()).toEqual(before);
    expect((await api.http.get(`/v1/policies/${p1}`).set('Authorization', api.admin)).body.version).toBe(1);
  });

  it('evaluate: a consequence rule says the write is measured at run time', async () => {
    const name = `cq-${api.suffix}`;
    const created = await api.http.post('/v1/policies').set('Authorization', api.admin).send({
      name, guardrails: [{ name: 'big-writes', action: 'require_approval', match: { statements: ['DELETE', 'UPDATE'], rowsAffectedOver: 100 }, sampleRows: 5 }],
    });
    expect(created.status).toBe(201);
    try {
      const del = await api.http.post(`/v1/policies/${name}/evaluate`).set('Authorization', api.admin).send({ command: 'DELETE FROM customers WHERE id > 0' });
      expect(del.body.decision).toMatchObject({ action: 'allow', measure: { mode: 'tag', tables: ['customers'] } });
      expect(del.body.decision.measure.note).toMatch(/^measured at run time: .*big-writes \(held for approval over 100 rows\)/);
      const bad = await api.http.post('/v1/policies').set('Authorization', api.admin).send({ name: `${name}-bad`, guardrails: [{ name: 'g', action: 'allow', match: { rowsAffectedOver: 1 } }] });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body)).toContain('guardrails.0.action');
    } finally {
      await prisma.policy.deleteMany({ where: { name } });
    }
  });

  it('evaluate: a dry run gives the decision and masking plan', async () => {
    const drop = await api.http.post(`/v1/policies/${p1}/evaluate`).set('Authorization', api.admin).send({ command: 'DROP TABLE customers', columns: ['id', 'email'] });
    expect(drop.status).toBe(200);
    expect(drop.body.decision).toMatchObject({ action: 'block', rule: 'no-destructive-ddl' });
    expect(drop.body.masking).toBeDefined();
    const sel = await api.http.post(`/v1/policies/${p1}/evaluate`).set('Authorization', api.admin).send({ command: 'SELECT 1' });
    expect(sel.body.decision.action).toBe('allow');
    const del = await api.http.post(`/v1/policies/${p1}/evaluate`).set('Authorization', api.admin).send({ command: 'DELETE FROM t' });
    expect(del.body.decision).toMatchObject({ action: 'require_approval', rule: 'bulk-writes' });
    // a masked column inside an expression: the dry run refuses it as the gateway would, naming the masking rule
    const derived = await api.http.post(`/v1/policies/${p1}/evaluate`).set('Authorization', api.admin).send({ command: 'SELECT lower(email) FROM customers' });
    expect(derived.body.decision).toMatchObject({ action: 'block', rule: 'emails' });
    expect(derived.body.decision.reason).toMatch(/can be read only as a plain column/);
    const missing = await api.http.post(`/v1/policies/nope-${api.suffix}/evaluate`).set('Authorization', api.admin).send({ command: 'SELECT 1' });
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toContain(`nope-${api.suffix}`);
    const noCommand = await api.http.post(`/v1/policies/${p1}/evaluate`).set('Authorization', api.admin).send({});
    expect(noCommand.status).toBe(400);
    expect(noCommand.body.error.message).toContain('command');
  });

  it('evaluate: shell commands (ssh, kubernetes exec) and file operations get command guardrails', async () => {
    const post = (body: object) => api.http.post(`/v1/policies/${p1}/evaluate`).set('Authorization', api.admin).send(body);
    const rm = await post({ command: "sudo sh -c 'r\\m -fr /usr'", protocol: 'ssh' });
    expect(rm.status).toBe(200);
    expect(rm.body.decision).toMatchObject({ action: 'block', rule: 'no-rm-root', reason: 'No recursive deletes at the top.', kinds: ['sudo', 'sh', 'rm'] });
    expect((await post({ command: 'sudo ls', protocol: 'kubernetes' })).body.decision).toMatchObject({ action: 'require_approval', rule: 'sudo-needs-approval' });
    expect((await post({ command: 'rm -rf build', protocol: 'ssh' })).body.decision.action).toBe('allow');
    expect((await post({ command: 'rm -rf *', protocol: 'ssh', cwd: '/' })).body.decision.rule).toBe('no-rm-root');
    expect((await post({ command: 'eval "$X"', protocol: 'ssh' })).body.decision).toMatchObject({ action: 'block', rule: 'dynamicCommand' });
    expect((await post({ command: 'sudo !!', protocol: 'ssh', interactive: true })).body.decision.rule).toBe('dynamicCommand');
    // the same text as SQL is SQL: command rules do not apply
    expect((await post({ command: 'rm -rf /' })).body.decision.rule).not.toBe('no-rm-root');
    const file = await post({ file: { operation: 'write', path: '/tmp/../etc/passwd' } });
    expect(file.body.decision).toMatchObject({ action: 'block', rule: 'no-etc-writes', reason: 'write of /etc/passwd is blocked by guardrail no-etc-writes' });
    expect((await post({ file: { operation: 'read', path: '/etc/passwd' } })).body.decision.action).toBe('allow');
    const bad = await post({ file: { operation: 'delete', path: '/x' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('operation');
    expect((await post({ command: 'ls', protocol: 'telnet' })).status).toBe(400);
  });

  it('policies travel in the snapshot; a policy in use cannot be deleted', async () => {
    const pool = generatePoolKeyPair();
    expect((await api.http.put(`/v1/gateway-pools/${poolName}`).set('Authorization', api.admin).send({ publicKey: pool.publicKey })).status).toBe(201);
    const unknownPolicy = await api.http.post('/v1/connections').set('Authorization', api.admin).send({ name: conn, pool: poolName, host: 'h', database: 'd', username: 'u', policy: `nope-${api.suffix}` });
    expect(unknownPolicy.status).toBe(400);
    expect(unknownPolicy.body.error.code).toBe('unknown_policy');
    const c = await api.http.post('/v1/connections').set('Authorization', api.admin).send({ name: conn, pool: poolName, host: 'h', database: 'd', username: 'u', policy: p1 });
    expect(c.status).toBe(201);
    await eventually(async () => {
      const e = await kv.get(natsNames(api.prefix).configKey(poolName));
      const snap = configSnapshotSchema.parse(verifyConfigSnapshot(e!.value, api.get(ConfigPublisherService).signingKeys()));
      expect(snap.connections.find((x) => x.name === conn)?.policy).toBe(p1);
      expect(snap.policies.find((p) => p.name === p2)?.version).toBe(2);
      expect(snap.policies.find((p) => p.name === p1)?.document).toEqual(doc(p1));
    }, 20_000); // a correctness wait, not a latency target: the first snapshot of a new pool (its keys made) can take seconds on a loaded host
    const del = await api.http.delete(`/v1/policies/${p1}`).set('Authorization', api.admin);
    expect(del.status).toBe(409);
    expect(del.body.error.message).toContain(conn);
    expect((await api.http.delete(`/v1/policies/${p2}`).set('Authorization', api.admin)).status).toBe(204);
    expect((await api.http.get(`/v1/policies/${p2}`).set('Authorization', api.admin)).status).toBe(404);
  });
});
