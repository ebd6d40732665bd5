import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { load as parseYaml } from 'js-yaml';
import { decodeJwt } from 'jose';
import { PrismaClient } from '@portcullis/db';
import {
  connectionSecretContext, GATEWAY_TLS_KEY_CONTEXT, generatePoolKeyPair, generateSshEd25519, kubernetesTargetSecretSchema, openSealed, parseSshCertificate,
  SSH_HOST_KEY_CONTEXT, sshTargetSecretSchema, verifySshCertificateSignature, ed25519FromOpenSshPrivateKey, ed25519PublicKeyLine, generateGatewayCa, issueGatewayServerCert,
} from '@portcullis/protocol';
import { ConfigPublisherService } from '../src/config-publisher/config-publisher.service.js';
import { TokensService } from '../src/auth/tokens.service.js';
import { startTestApi, type TestApi } from './support.js';
import { kubeBinaries, kubeSkipReason } from '../../../test/support/kube-cluster.js';

const run = promisify(execFile);

/**
 * SSH and Kubernetes connections over the real api (Postgres, NATS): REST validation per type, secrets
 * write-only and sealed per pool, the pool's SSH/TLS keys stable across restarts, OpenSSH user
 * certificates read by the real ssh-keygen, known_hosts, and kubeconfigs read by the real kubectl.
 */
describe('ssh and kubernetes connections', () => {
  let api: TestApi;
  let prisma: PrismaClient;
  let s: string;
  let poolName: string;
  let group: string;
  let userToken: string;
  let outsiderToken: string;
  const ids: string[] = [];
  const pool = generatePoolKeyPair();
  const dir = mkdtempSync(join(tmpdir(), 'conn-ssh-k8s-'));
  const targetKey = generateSshEd25519('target');
  const hostKey = generateSshEd25519('host').publicKey;
  let kubeCa: { caPem: string; caKeyPem: string };
  let kubeClient: { certPem: string; keyPem: string };
  const servers: Server[] = [];

  beforeAll(async () => {
    api = await startTestApi();
    s = api.suffix;
    poolName = `sk-${s}`;
    group = `sk-eng-${s}`;
    prisma = api.get(PrismaClient);
    kubeCa = await generateGatewayCa('test cluster');
    kubeClient = await issueGatewayServerCert(kubeCa, ['client']);
    const as = (r: { status: number; body: unknown }, status: number) => {
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      return r.body as Record<string, unknown>;
    };
    as(await api.http.put(`/v1/gateway-pools/${poolName}`).set('Authorization', api.admin).send({ publicKey: pool.publicKey }), 201);
    as(await api.http.post('/v1/groups').set('Authorization', api.admin).send({ name: group }), 201);
    const user = as(await api.http.post('/v1/identities').set('Authorization', api.admin).send({ kind: 'person', subject: `sk-user-${s}`, groups: [group] }), 201);
    const outsider = as(await api.http.post('/v1/identities').set('Authorization', api.admin).send({ kind: 'agent', subject: `agent:sk-out-${s}` }), 201);
    ids.push(user.id as string, outsider.id as string);
    userToken = `Bearer ${(await api.get(TokensService).issueApiToken(user.id as string)).access_token}`;
    outsiderToken = `Bearer ${(await api.get(TokensService).issueApiToken(outsider.id as string)).access_token}`;
  });

  afterAll(async () => {
    await Promise.all(servers.map((x) => new Promise((r) => x.close(r))));
    if (prisma) {
      await prisma.token.deleteMany({ where: { identityId: { in: ids } } });
      await prisma.identity.deleteMany({ where: { id: { in: ids } } });
      await prisma.connection.deleteMany({ where: { pool: poolName } });
      await prisma.group.deleteMany({ where: { name: group } });
      await prisma.gatewayPool.deleteMany({ where: { name: poolName } });
    }
    await api?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (body: object) => api.http.post('/v1/connections').set('Authorization', api.admin).send({ pool: poolName, allowedGroups: [group], ...body });

  it.each([
    { name: 'ssh without hostKeys', body: { type: 'ssh', host: 'h', username: 'u', secret: { password: 'p' } }, field: 'hostKeys' },
    { name: 'ssh with empty hostKeys', body: { type: 'ssh', host: 'h', username: 'u', secret: { password: 'p' }, hostKeys: [] }, field: 'hostKeys' },
    { name: 'ssh with a garbage host key', body: { type: 'ssh', host: 'h', username: 'u', secret: { password: 'p' }, hostKeys: ['AAAA'] }, field: 'hostKeys.0' },
    { name: 'ssh without a secret', body: { type: 'ssh', host: 'h', username: 'u', hostKeys: [hostKey] }, field: 'secret' },
    { name: 'ssh with a secret of both kinds', body: { type: 'ssh', host: 'h', username: 'u', secret: { password: 'p', privateKey: targetKey.privateKey }, hostKeys: [hostKey] }, field: 'secret' },
    { name: 'ssh with a postgres field', body: { type: 'ssh', host: 'h', username: 'u', secret: { password: 'p' }, hostKeys: [hostKey], database: 'd' }, field: 'database' },
    { name: 'ssh with a bad user name', body: { type: 'ssh', host: 'h', username: 'u; rm', secret: { password: 'p' }, hostKeys: [hostKey] }, field: 'username' },
    { name: 'kubernetes over http', body: { type: 'kubernetes', server: 'http://k:6443', caPem: 'x', secret: { token: 't' } }, field: 'server' },
    { name: 'kubernetes without a CA', body: { type: 'kubernetes', server: 'https://k:6443', secret: { token: 't' } }, field: 'caPem' },
    { name: 'kubernetes with a broken CA', body: { type: 'kubernetes', server: 'https://k:6443', caPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', secret: { token: 't' } }, field: 'caPem' },
    { name: 'kubernetes with a password', body: { type: 'kubernetes', server: 'https://k:6443', caPem: '', password: 'p' }, field: 'password' },
    { name: 'an unknown type', body: { type: 'mysql', host: 'h' }, field: 'type' },
    { name: 'type and kind that disagree', body: { type: 'ssh', kind: 'postgres', host: 'h' }, field: 'kind' },
  ])('refuses $name, naming the field', async ({ body, field }) => {
    const r = await post({ name: `bad-${s}`, ...body });
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.error.message).toContain(`${field}:`);
    expect(await prisma.connection.count({ where: { name: `bad-${s}` } })).toBe(0);
  });

  it('creates an ssh connection (kind as an alias of type); the secret is write-only and encrypted at rest', async () => {
    const r = await post({ name: `box-${s}`, kind: 'ssh', host: '10.0.0.5', username: 'deploy', secret: { privateKey: targetKey.privateKey }, hostKeys: [`${hostKey}`, hostKey] });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({ name: `box-${s}`, type: 'ssh', kind: 'ssh', host: '10.0.0.5', port: 22, username: 'deploy', hasSecret: true, hostKeys: [hostKey.split(' ').slice(0, 2).join(' ')] });
    expect(JSON.stringify(r.body)).not.toContain('PRIVATE KEY');
    const row = await prisma.connection.findUniqueOrThrow({ where: { name: `box-${s}` } });
    expect(row.kind).toBe('ssh');
    expect(row.secretCiphertext).not.toContain('PRIVATE');
    const pw = await post({ name: `pwbox-${s}`, type: 'ssh', host: 'box.internal', port: 2022, username: 'ops', secret: { password: 'hunter2' }, hostKeys: [hostKey] });
    expect(pw.status).toBe(201);
    expect(pw.body).toMatchObject({ port: 2022 });
  });

  it('creates a kubernetes connection with a token or a client certificate', async () => {
    const r = await post({ name: `k8s-${s}`, type: 'kubernetes', server: 'https://10.0.0.9:6443', caPem: kubeCa.caPem, secret: { token: 'cluster-token' }, impersonate: true });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({ type: 'kubernetes', server: 'https://10.0.0.9:6443', caPem: kubeCa.caPem, impersonate: true, host: '10.0.0.9', port: 6443, hasSecret: true });
    expect(JSON.stringify(r.body)).not.toContain('cluster-token');
    const c = await post({ name: `k8s-cert-${s}`, type: 'kubernetes', server: 'https://k.example:443', caPem: kubeCa.caPem, secret: { clientCert: kubeClient.certPem, clientKey: kubeClient.keyPem } });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    expect(c.body.impersonate).toBe(false);
    const bad = await post({ name: `k8s-bad-${s}`, type: 'kubernetes', server: 'https://k:6443', caPem: kubeCa.caPem, secret: { clientCert: kubeClient.certPem, clientKey: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('secret.clientKey');
  });

  it('PATCH checks fields against the type and reseals a new secret', async () => {
    const wrong = await api.http.patch(`/v1/connections/box-${s}`).set('Authorization', api.admin).send({ database: 'x', server: 'https://a:1' });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.message).toMatch(/database: not a field of a ssh connection/);
    const badSecret = await api.http.patch(`/v1/connections/box-${s}`).set('Authorization', api.admin).send({ secret: { token: 't' } });
    expect(badSecret.status).toBe(400);
    const ok = await api.http.patch(`/v1/connections/box-${s}`).set('Authorization', api.admin).send({ secret: { password: 'new-pw' }, hostKeys: [hostKey, targetKey.publicKey] });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.hostKeys).toHaveLength(2);
    const pg = await api.http.patch(`/v1/connections/k8s-${s}`).set('Authorization', api.admin).send({ impersonate: false, server: 'https://10.0.0.10:6443' });
    expect(pg.status).toBe(200);
    expect(pg.body).toMatchObject({ impersonate: false, host: '10.0.0.10' });
    await api.http.patch(`/v1/connections/k8s-${s}`).set('Authorization', api.admin).send({ impersonate: true, server: 'https://10.0.0.9:6443' }).expect(200);
  });

  it('publishes ssh and kubernetes connections and the pool\'s SSH host key, user CA and TLS certificate, sealed', async () => {
    const publisher = api.get(ConfigPublisherService);
    await publisher.publishNow();
    const snap = (await publisher.current(poolName))!;
    const box = snap.connections.find((c) => c.name === `box-${s}`)!;
    expect(box).toMatchObject({ kind: 'ssh', host: '10.0.0.5', port: 22, username: 'deploy', ssh: { hostKeys: [hostKey.split(' ').slice(0, 2).join(' '), targetKey.publicKey.split(' ').slice(0, 2).join(' ')] } });
    expect(sshTargetSecretSchema.parse(JSON.parse(openSealed(pool.privateKey, box.secret!, connectionSecretContext(box.name))))).toEqual({ password: 'new-pw' });
    const k8s = snap.connections.find((c) => c.name === `k8s-${s}`)!;
    expect(k8s).toMatchObject({ kind: 'kubernetes', kubernetes: { server: 'https://10.0.0.9:6443', caPem: kubeCa.caPem, impersonate: true } });
    expect(kubernetesTargetSecretSchema.parse(JSON.parse(openSealed(pool.privateKey, k8s.secret!, connectionSecretContext(k8s.name))))).toEqual({ token: 'cluster-token' });
    const cert = snap.connections.find((c) => c.name === `k8s-cert-${s}`)!;
    expect(kubernetesTargetSecretSchema.parse(JSON.parse(openSealed(pool.privateKey, cert.secret!, connectionSecretContext(cert.name))))).toMatchObject({ clientCert: kubeClient.certPem });

    // the pool's gateway keys: the SSH host key opens with the pool key and is an OpenSSH Ed25519 key
    const hostKeyFile = openSealed(pool.privateKey, snap.ssh!.hostKey, SSH_HOST_KEY_CONTEXT);
    writeFileSync(join(dir, 'gw_host'), hostKeyFile, { mode: 0o600 });
    const { stdout: pub } = await run('ssh-keygen', ['-y', '-f', join(dir, 'gw_host')]);
    expect(pub.trim().split(' ').slice(0, 2).join(' ')).toBe(ed25519PublicKeyLine(ed25519FromOpenSshPrivateKey(hostKeyFile)));
    expect(snap.ssh!.userCaPublicKey).toMatch(/^ssh-ed25519 /);
    // the TLS certificate: signed by the pool CA, for localhost, 127.0.0.1 and the public host; its key opens
    const x = new X509Certificate(snap.tls!.certPem);
    expect(x.checkIssued(new X509Certificate(snap.tls!.caPem))).toBe(true);
    expect(x.subjectAltName).toContain('DNS:localhost');
    expect(x.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(x.checkPrivateKey((await import('node:crypto')).createPrivateKey(openSealed(pool.privateKey, snap.tls!.key, GATEWAY_TLS_KEY_CONTEXT)))).toBe(true);
  });

  it('keeps the pool\'s keys across an api restart (same master key)', async () => {
    const before = (await api.get(ConfigPublisherService).current(poolName))!;
    const second = await startTestApi({ PORTCULLIS_MASTER_KEY: api.masterKey, NATS_PREFIX: api.prefix, PORTCULLIS_BOOTSTRAP_TOKEN: api.bootstrapToken });
    try {
      await second.get(ConfigPublisherService).publishNow();
      const after = (await second.get(ConfigPublisherService).current(poolName))!;
      expect(after.revision).toBeGreaterThan(before.revision);
      expect(after.ssh!.userCaPublicKey).toBe(before.ssh!.userCaPublicKey);
      expect(openSealed(pool.privateKey, after.ssh!.hostKey, SSH_HOST_KEY_CONTEXT)).toBe(openSealed(pool.privateKey, before.ssh!.hostKey, SSH_HOST_KEY_CONTEXT));
      expect(after.tls!.caPem).toBe(before.tls!.caPem);
      expect(after.tls!.certPem).toBe(before.tls!.certPem);
    } finally {
      // not second.close(): it would delete the shared master key's rows the first api still uses
      await second.app.close();
    }
    // another public host: a new server certificate for it from the same CA (kubeconfigs stay valid)
    const third = await startTestApi({ PORTCULLIS_MASTER_KEY: api.masterKey, NATS_PREFIX: api.prefix, PORTCULLIS_BOOTSTRAP_TOKEN: api.bootstrapToken, GATEWAY_PUBLIC_HOST: 'gw.example.test' });
    try {
      await third.get(ConfigPublisherService).publishNow();
      const moved = (await third.get(ConfigPublisherService).current(poolName))!;
      expect(moved.tls!.caPem).toBe(before.tls!.caPem);
      expect(new X509Certificate(moved.tls!.certPem).subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, DNS:gw.example.test');
      expect(new X509Certificate(moved.tls!.certPem).checkIssued(new X509Certificate(before.tls!.caPem))).toBe(true);
      expect(moved.ssh!.userCaPublicKey).toBe(before.ssh!.userCaPublicKey);
    } finally {
      await third.app.close();
    }
    // back to this api's host
    await api.get(ConfigPublisherService).publishNow();
  });

  it('credential uri per type: ssh://name@host:2222 and https://host:8443/k8s/name', async () => {
    const ssh = await api.http.post(`/v1/connections/box-${s}/credentials`).set('Authorization', userToken).send({});
    expect(ssh.status, JSON.stringify(ssh.body)).toBe(201);
    expect(ssh.body).toMatchObject({ uri: `ssh://box-${s}@127.0.0.1:2222`, port: 2222, host: '127.0.0.1' });
    const k8s = await api.http.post(`/v1/connections/k8s-${s}/credentials`).set('Authorization', userToken).send({});
    expect(k8s.body).toMatchObject({ uri: `https://127.0.0.1:8443/k8s/k8s-${s}`, port: 8443 });
  });

  it('signs an OpenSSH user certificate that ssh-keygen -L reads: principal = connection, key id = a gateway credential, validity = the credential\'s', async () => {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id_ed25519')]);
    const publicKey = readFileSync(join(dir, 'id_ed25519.pub'), 'utf8');
    const r = await api.http.post(`/v1/connections/box-${s}/ssh-certificate`).set('Authorization', userToken).send({ publicKey });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    writeFileSync(join(dir, 'id_ed25519-cert.pub'), `${r.body.certificate}\n`);
    const { stdout } = await run('ssh-keygen', ['-L', '-f', join(dir, 'id_ed25519-cert.pub')], { env: { ...process.env, TZ: 'UTC' } });
    expect(stdout).toContain('Type: ssh-ed25519-cert-v01@openssh.com user certificate');
    expect(stdout).toMatch(new RegExp(`Principals: \\n\\s+box-${s}\\n`));
    const cert = parseSshCertificate(Buffer.from(r.body.certificate.split(' ')[1], 'base64'));
    const snap = (await api.get(ConfigPublisherService).current(poolName))!;
    expect(verifySshCertificateSignature(cert, snap.ssh!.userCaPublicKey)).toBe(true);
    const claims = decodeJwt(cert.keyId);
    expect(claims).toMatchObject({ aud: 'portcullis-gateway', cn: `box-${s}`, sub: `sk-user-${s}`, jti: r.body.jti });
    expect(cert.validBefore.getTime()).toBe(claims.exp! * 1000);
    // the credential is bound to the certified key (cnf): ssh-keygen's own fingerprint of it
    const { stdout: fp } = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'id_ed25519.pub')]);
    expect(`SHA256:${(claims.cnf as Record<string, string>)['ssh-sha256']}`).toBe(fp.split(' ')[1]);
    expect(r.body.expiresAt).toBe(new Date(claims.exp! * 1000).toISOString());
    const to = cert.validBefore.toISOString().slice(0, 19);
    expect(stdout).toContain(`to ${to}`);
    expect(r.body.knownHosts).toContain('@cert-authority');
    expect(r.body).toMatchObject({ principal: `box-${s}`, uri: `ssh://box-${s}@127.0.0.1:2222` });
    // the credential row exists, so revoking it ends what the certificate opens
    expect(await prisma.token.count({ where: { id: r.body.jti, connection: `box-${s}` } })).toBe(1);
  });

  it('refuses a certificate to callers who may not use the connection, for bad keys and for non-ssh connections', async () => {
    const publicKey = generateSshEd25519().publicKey;
    const out = await api.http.post(`/v1/connections/box-${s}/ssh-certificate`).set('Authorization', outsiderToken).send({ publicKey });
    expect(out.status).toBe(403);
    const bad = await api.http.post(`/v1/connections/box-${s}/ssh-certificate`).set('Authorization', userToken).send({ publicKey: 'ssh-ed25519 AAAA' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('publicKey');
    const k8s = await api.http.post(`/v1/connections/k8s-${s}/ssh-certificate`).set('Authorization', userToken).send({ publicKey });
    expect(k8s.status).toBe(400);
    expect(k8s.body.error.code).toBe('wrong_connection_type');
    expect((await api.http.post(`/v1/connections/nope-${s}/ssh-certificate`).set('Authorization', userToken).send({ publicKey })).status).toBe(404);
    expect((await api.http.get(`/v1/connections/box-${s}/ssh-known-hosts`).set('Authorization', outsiderToken)).status).toBe(403);
  });

  it('known_hosts: the gateway host key for [host]:2222 and its host CA; ssh-keygen -F finds it', async () => {
    const r = await api.http.get(`/v1/connections/box-${s}/ssh-known-hosts`).set('Authorization', userToken);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/text\/plain/);
    const snap = (await api.get(ConfigPublisherService).current(poolName))!;
    const hostPub = ed25519PublicKeyLine(ed25519FromOpenSshPrivateKey(openSealed(pool.privateKey, snap.ssh!.hostKey, SSH_HOST_KEY_CONTEXT)));
    const lines = r.text.trim().split('\n');
    expect(lines[0]).toBe(`[localhost]:2222,[127.0.0.1]:2222 ${hostPub}`);
    expect(lines[1]).toMatch(/^@cert-authority \[localhost\]:2222,\[127\.0\.0\.1\]:2222 ssh-ed25519 /);
    writeFileSync(join(dir, 'known_hosts'), r.text);
    const { stdout } = await run('ssh-keygen', ['-F', '[127.0.0.1]:2222', '-f', join(dir, 'known_hosts')]);
    expect(stdout).toContain(hostPub);
    // the host certificate in the snapshot is signed by that CA
    const hostCert = parseSshCertificate(Buffer.from(snap.ssh!.hostCertificate!.split(' ')[1]!, 'base64'));
    expect(hostCert.type).toBe(2);
    expect(verifySshCertificateSignature(hostCert, lines[1]!.split(' ').slice(2).join(' '))).toBe(true);
  });

  const kubeSkip = kubeSkipReason();
  const kubectl = kubeSkip ? null : kubeBinaries().kubectl;
  it.skipIf(!kubectl)(`kubeconfig: kubectl reads it; with ?token=static kubectl reaches a server with the pool certificate (${kubeSkip ?? 'kubectl found'})`, async () => {
    const r = await api.http.get(`/v1/connections/k8s-${s}/kubeconfig?namespace=team-a`).set('Authorization', userToken);
    expect(r.status, r.text).toBe(200);
    expect(r.headers['content-type']).toMatch(/application\/yaml/);
    const file = join(dir, 'kubeconfig');
    writeFileSync(file, r.text);
    const { stdout } = await run(kubectl!, ['config', 'view', '--kubeconfig', file, '--raw', '-o', 'json']);
    const view = JSON.parse(stdout);
    const id = `portcullis-k8s-${s}`;
    expect(view['current-context']).toBe(id);
    expect(view.clusters[0].cluster.server).toBe(`https://127.0.0.1:8443/k8s/k8s-${s}`);
    expect(view.contexts[0].context).toEqual({ cluster: id, user: id, namespace: 'team-a' });
    expect(view.users[0].user.exec).toMatchObject({ apiVersion: 'client.authentication.k8s.io/v1', command: 'portcullis', args: ['kube-credential', `k8s-${s}`] });
    const snap = (await api.get(ConfigPublisherService).current(poolName))!;
    expect(Buffer.from(view.clusters[0].cluster['certificate-authority-data'], 'base64').toString()).toBe(snap.tls!.caPem);

    // A static token kubeconfig: kubectl pins the pool CA and sends the credential to a server holding
    // the pool's certificate (a stand-in for the gateway listener, which the gateway tests cover).
    const st = await api.http.get(`/v1/connections/k8s-${s}/kubeconfig?token=static`).set('Authorization', userToken);
    expect(st.status).toBe(200);
    const doc = parseYaml(st.text) as { users: { user: { token: string } }[]; clusters: { cluster: { server: string } }[] };
    const token = doc.users[0]!.user.token;
    expect(decodeJwt(token)).toMatchObject({ aud: 'portcullis-gateway', cn: `k8s-${s}` });
    const seen: string[] = [];
    const server = createServer({ cert: snap.tls!.certPem, key: openSealed(pool.privateKey, snap.tls!.key, GATEWAY_TLS_KEY_CONTEXT) }, (req, res) => {
      seen.push(`${(req.url ?? '').split('?')[0]} ${req.headers.authorization ?? ''}`);
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ major: '1', minor: '32', gitVersion: 'v1.32.13' }));
    });
    servers.push(server);
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const port = (server.address() as AddressInfo).port;
    doc.clusters[0]!.cluster.server = `https://localhost:${port}/k8s/k8s-${s}`;
    writeFileSync(join(dir, 'kubeconfig-static'), JSON.stringify(doc));
    // (not `get --raw`: that path ignores the server URL's /k8s/<name> prefix; every API call keeps it)
    const v = await run(kubectl!, ['--kubeconfig', join(dir, 'kubeconfig-static'), 'version', '-o', 'json']);
    expect(JSON.parse(v.stdout).serverVersion.gitVersion).toBe('v1.32.13');
    expect(seen).toEqual([`/k8s/k8s-${s}/version Bearer ${token}`]);
    // another CA: kubectl refuses the server
    const other = await generateGatewayCa('other');
    (doc as unknown as { clusters: { cluster: Record<string, string> }[] }).clusters[0]!.cluster['certificate-authority-data'] = Buffer.from(other.caPem).toString('base64');
    writeFileSync(join(dir, 'kubeconfig-other'), JSON.stringify(doc));
    await expect(run(kubectl!, ['--kubeconfig', join(dir, 'kubeconfig-other'), 'version', '-o', 'json'])).rejects.toThrow(/certificate/);

    expect((await api.http.get(`/v1/connections/box-${s}/kubeconfig`).set('Authorization', userToken)).status).toBe(400);
    expect((await api.http.get(`/v1/connections/k8s-${s}/kubeconfig`).set('Authorization', outsiderToken)).status).toBe(403);
    expect((await api.http.get(`/v1/connections/k8s-${s}/kubeconfig?token=bogus`).set('Authorization', userToken)).status).toBe(400);
  });
});
