import { execFile, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { PrismaClient } from '@portcullis/db';
import { GATEWAY_TLS_KEY_CONTEXT, generateGatewayCa, generatePoolKeyPair, generateSshEd25519, openSealed, parseSshCertificate, SSH_HOST_KEY_CONTEXT } from '@portcullis/protocol';
import { TokensService } from '../apps/api/src/auth/tokens.service.js';
import { ConfigPublisherService } from '../apps/api/src/config-publisher/config-publisher.service.js';
import { startTestApi, type TestApi } from '../apps/api/test/support.js';
import { splitSshArgs } from '../apps/cli/src/commands/ssh.js';
import { freePort } from './support/free-port.js';
import { kubeBinaries, kubeSkipReason } from './support/kube-cluster.js';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'apps/cli/dist/main.js');
const SSHD = process.env.SSHD_BINARY ?? '/usr/sbin/sshd';

/**
 * The CLI's `ssh`, `kubeconfig` and `kube-credential` against the real api, with the real OpenSSH
 * client and kubectl. The peer on the other side stands in for the gateway's listeners with the
 * pool's own keys: a real sshd with the gateway host key that trusts the pool's user CA (the login
 * user is the connection name, so the connection is named after the unix user running the test),
 * and an HTTPS server with the pool's TLS certificate. The gateway's own tests cover the real path.
 */
describe.skipIf(!existsSync(SSHD))('portcullis ssh / kubeconfig / kube-credential', () => {
  let api: TestApi;
  let prisma: PrismaClient;
  let base: string;
  let token: string;
  let sshPort: number;
  let sshd: ReturnType<typeof spawn> | null = null;
  let sshdLog = '';
  const httpsServers: Server[] = [];
  const pool = generatePoolKeyPair();
  const dir = mkdtempSync(join(tmpdir(), 'cli-ssh-kube-'));
  const home = join(dir, 'home');
  const user = userInfo().username;
  let s: string;
  let identityId: string;
  const names = { pool: '', group: '', kube: '' };

  const cli = (args: string[], env: Record<string, string> = {}) =>
    run(process.execPath, [CLI, ...args], { env: { ...process.env, HOME: home, PORTCULLIS_API: base, PORTCULLIS_TOKEN: token, PORTCULLIS_CLI_CONFIG: join(home, 'cli.json'), ...env }, timeout: 60_000 });

  beforeAll(async () => {
    mkdirSync(home, { recursive: true });
    sshPort = await freePort();
    api = await startTestApi({ GATEWAY_SSH_PUBLIC_PORT: String(sshPort) });
    await api.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(api.app.getHttpServer().address() as AddressInfo).port}`;
    s = api.suffix;
    prisma = api.get(PrismaClient);
    names.pool = `cli-${s}`;
    names.group = `cli-eng-${s}`;
    names.kube = `cli-k8s-${s}`;
    // the ssh connection is named after the unix user (sshd logs in as the certificate's principal)
    await prisma.connection.deleteMany({ where: { name: user } });
    const admin = (m: 'post' | 'put', path: string, body: object) => api.http[m](path).set('Authorization', api.admin).send(body);
    expect((await admin('put', `/v1/gateway-pools/${names.pool}`, { publicKey: pool.publicKey })).status).toBe(201);
    expect((await admin('post', '/v1/groups', { name: names.group })).status).toBe(201);
    const id = await admin('post', '/v1/identities', { kind: 'agent', subject: `agent:cli-${s}`, groups: [names.group] });
    identityId = id.body.id;
    token = (await api.get(TokensService).issueApiToken(identityId)).access_token;
    const target = generateSshEd25519();
    const c = await admin('post', '/v1/connections', { name: user, type: 'ssh', pool: names.pool, host: '10.9.9.9', username: 'deploy', secret: { privateKey: target.privateKey }, hostKeys: [target.publicKey], allowedGroups: [names.group] });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    const ca = await generateGatewayCa('cluster');
    const k = await admin('post', '/v1/connections', { name: names.kube, type: 'kubernetes', pool: names.pool, server: 'https://10.9.9.9:6443', caPem: ca.caPem, secret: { token: 't' }, allowedGroups: [names.group] });
    expect(k.status, JSON.stringify(k.body)).toBe(201);

    // an sshd with the pool's gateway host key, trusting user certificates of the pool's user CA
    await api.get(ConfigPublisherService).publishNow();
    const snap = (await api.get(ConfigPublisherService).current(names.pool))!;
    const sd = join(dir, 'sshd');
    mkdirSync(sd);
    mkdirSync('/run/sshd', { recursive: true });
    writeFileSync(join(sd, 'host'), openSealed(pool.privateKey, snap.ssh!.hostKey, SSH_HOST_KEY_CONTEXT), { mode: 0o600 });
    writeFileSync(join(sd, 'user_ca.pub'), `${snap.ssh!.userCaPublicKey}\n`);
    writeFileSync(join(sd, 'principals'), `${user}\n`);
    writeFileSync(join(sd, 'sshd_config'), [
      `Port ${sshPort}`, 'ListenAddress 127.0.0.1', `HostKey ${join(sd, 'host')}`, `PidFile ${join(sd, 'pid')}`,
      `TrustedUserCAKeys ${join(sd, 'user_ca.pub')}`, `AuthorizedPrincipalsFile ${join(sd, 'principals')}`, 'AuthorizedKeysFile none',
      'StrictModes no', 'UsePAM no', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PubkeyAuthentication yes',
      user === 'root' ? 'PermitRootLogin prohibit-password' : '', 'PrintMotd no', 'LogLevel VERBOSE',
    ].filter(Boolean).join('\n') + '\n');
    sshd = spawn(SSHD, ['-D', '-e', '-f', join(sd, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    sshd.stderr!.on('data', (b: Buffer) => (sshdLog += b.toString()));
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`sshd did not start:\n${sshdLog}`)), 10_000);
      const check = () => /Server listening on/.test(sshdLog) && (clearTimeout(t), res());
      sshd!.stderr!.on('data', check);
      sshd!.once('exit', (code) => (clearTimeout(t), rej(new Error(`sshd exited ${code}:\n${sshdLog}`))));
    });
  });

  afterAll(async () => {
    if (sshd && sshd.exitCode === null) {
      const exited = new Promise((r) => sshd!.once('exit', r));
      sshd.kill('SIGTERM');
      await exited;
    }
    await Promise.all(httpsServers.map((x) => new Promise((r) => x.close(r))));
    if (prisma) {
      await prisma.token.deleteMany({ where: { identityId } });
      await prisma.identity.deleteMany({ where: { id: identityId } });
      await prisma.connection.deleteMany({ where: { pool: names.pool } });
      await prisma.group.deleteMany({ where: { name: names.group } });
      await prisma.gatewayPool.deleteMany({ where: { name: names.pool } });
    }
    await api?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    { args: ['ls', '-la'], options: [], command: ['ls', '-la'] },
    { args: ['-p', '22', '-tt', 'top'], options: ['-p', '22', '-tt'], command: ['top'] },
    { args: ['-oBatchMode=yes', '-vvv', '-L', '8080:db:5432'], options: ['-oBatchMode=yes', '-vvv', '-L', '8080:db:5432'], command: [] },
    { args: ['-4p', '2200', 'uptime'], options: ['-4p', '2200'], command: ['uptime'] },
  ])('splits ssh args $args', ({ args, options, command }) => expect(splitSshArgs(args)).toEqual({ options, command }));

  it('portcullis ssh makes a key, gets a certificate and known_hosts, and OpenSSH logs in with them (strict host key checking)', async () => {
    const { stdout, stderr } = await cli(['ssh', user, '-o', 'BatchMode=yes', '--', 'echo', 'through-the-certificate']);
    expect(stdout.trim()).toBe('through-the-certificate');
    expect(stderr).toContain('Made an SSH key for Portcullis');
    const key = join(home, '.portcullis', 'ssh', 'id_ed25519');
    expect(statSync(key).mode & 0o777).toBe(0o600);
    const cert = readFileSync(join(home, '.portcullis', 'ssh', user, 'cert.pub'), 'utf8');
    const parsed = parseSshCertificate(Buffer.from(cert.split(' ')[1]!, 'base64'));
    expect(parsed.principals).toEqual([user]);
    expect(decodeJwt(parsed.keyId)).toMatchObject({ cn: user, sub: `agent:cli-${s}`, aud: 'portcullis-gateway' });
    expect(sshdLog).toMatch(/Accepted publickey for \S+ from 127\.0\.0\.1 .*ED25519-CERT/);
    // a second run reuses the key
    const again = await cli(['ssh', user, '-o', 'BatchMode=yes', 'true']);
    expect(again.stderr).not.toContain('Made an SSH key');
  });

  it('portcullis ssh --print prints the ssh command; an unknown connection fails with the api\'s reason', async () => {
    const { stdout } = await cli(['ssh', user, '--print', '--', 'uptime']);
    expect(stdout).toMatch(new RegExp(`^ssh -i \\S+id_ed25519 -o CertificateFile=\\S+cert.pub -o IdentitiesOnly=yes -o UserKnownHostsFile=\\S+known_hosts -o StrictHostKeyChecking=yes -p ${sshPort} ${user}@127.0.0.1 uptime\\n$`));
    const bad = await cli(['ssh', `nope-${s}`]).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { code: number }).code).toBe(1);
    expect((bad as { stderr: string }).stderr).toContain(`connection "nope-${s}" does not exist`);
  });

  const kubeSkip = kubeSkipReason();
  const kubectl = kubeSkip ? null : kubeBinaries().kubectl;
  it.skipIf(!kubectl)(`kubeconfig + kube-credential: kubectl runs the plugin, sends its token, and the plugin caches it (${kubeSkip ?? 'kubectl found'})`, async () => {
    const file = join(dir, 'kube', 'config');
    await cli(['kubeconfig', names.kube, '--output', file]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // the plugin on PATH, as `portcullis`
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'portcullis'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    chmodSync(join(bin, 'portcullis'), 0o755);
    // the plugin's own output: an ExecCredential
    const direct = await cli(['kube-credential', names.kube]);
    const ec = JSON.parse(direct.stdout);
    expect(ec).toMatchObject({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: expect.any(String), expirationTimestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) } });
    expect(decodeJwt(ec.status.token)).toMatchObject({ cn: names.kube, aud: 'portcullis-gateway' });

    // a server with the pool's TLS certificate where the gateway listener would be
    const snap = (await api.get(ConfigPublisherService).current(names.pool))!;
    const seen: string[] = [];
    const server = createServer({ cert: snap.tls!.certPem, key: openSealed(pool.privateKey, snap.tls!.key, GATEWAY_TLS_KEY_CONTEXT) }, (req, res) => {
      seen.push(req.headers.authorization ?? '');
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ major: '1', minor: '32', gitVersion: 'v1.32.13' }));
    });
    httpsServers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    writeFileSync(file, readFileSync(file, 'utf8').replace('https://127.0.0.1:8443/', `https://127.0.0.1:${port}/`));
    const env = { ...process.env, HOME: home, PATH: `${bin}:${process.env.PATH}`, PORTCULLIS_API: base, PORTCULLIS_TOKEN: token, PORTCULLIS_CLI_CONFIG: join(home, 'cli.json') };
    for (let i = 0; i < 2; i++) {
      const v = await run(kubectl!, ['--kubeconfig', file, 'version', '-o', 'json'], { env });
      expect(JSON.parse(v.stdout).serverVersion.gitVersion).toBe('v1.32.13');
    }
    // kubectl sent the plugin's credential; the plugin answered from its cache (one credential for every call)
    expect(new Set(seen)).toEqual(new Set([`Bearer ${ec.status.token}`]));
    expect(await prisma.token.count({ where: { identityId, connection: names.kube } })).toBe(1);
  });

  it.skipIf(!kubectl)(`kube-credential: a credential the server answered 401 is replaced when the same kubectl runs the plugin again, through a wrapper that does not exec (${kubeSkip ?? 'kubectl found'})`, async () => {
    const file = join(dir, 'kube-401', 'config');
    const cliHome = join(dir, 'home-401');
    mkdirSync(cliHome, { recursive: true });
    const env = { ...process.env, HOME: cliHome, PORTCULLIS_API: base, PORTCULLIS_TOKEN: token, PORTCULLIS_CLI_CONFIG: join(cliHome, 'cli.json'), KUBECACHEDIR: join(cliHome, 'kubecache') };
    await run(process.execPath, [CLI, 'kubeconfig', names.kube, '--output', file], { env });
    // `portcullis` as a shell script that runs node as its child: the plugin's parent is sh, kubectl its grandparent
    const bin = join(dir, 'bin-noexec');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'portcullis'), `#!/bin/sh\n"${process.execPath}" "${CLI}" "$@"\n`);
    chmodSync(join(bin, 'portcullis'), 0o755);
    const snap = (await api.get(ConfigPublisherService).current(names.pool))!;
    const seen: string[] = [];
    const refused = new Set<string>();
    const server = createServer({ cert: snap.tls!.certPem, key: openSealed(pool.privateKey, snap.tls!.key, GATEWAY_TLS_KEY_CONTEXT) }, (req, res) => {
      const auth = req.headers.authorization ?? '';
      seen.push(auth);
      res.setHeader('Content-Type', 'application/json');
      if (refused.has(auth)) {
        res.statusCode = 401;
        res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'gateway credential has been revoked', reason: 'Unauthorized', code: 401 }));
        return;
      }
      res.end(JSON.stringify({ major: '1', minor: '32', gitVersion: 'v1.32.13' }));
    });
    httpsServers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    writeFileSync(file, readFileSync(file, 'utf8').replace('https://127.0.0.1:8443/', `https://127.0.0.1:${(server.address() as AddressInfo).port}/`));
    const kubectlVersion = () => run(kubectl!, ['--kubeconfig', file, 'version', '-o', 'json'], { env: { ...env, PATH: `${bin}:${process.env.PATH}` } }).then((r) => ({ code: 0, ...r }), (e: { code: number; stdout: string; stderr: string }) => e);
    const minted = () => prisma.token.count({ where: { identityId, connection: names.kube } });

    expect((await kubectlVersion()).code).toBe(0);
    const first = seen.at(-1)!;
    const before = await minted();
    // the server now refuses that credential (as the gateway does once it is revoked)
    refused.add(first);
    const met = await kubectlVersion();
    expect(met.code).not.toBe(0);
    expect(await minted()).toBe(before + 1);
    const ok = await kubectlVersion();
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).serverVersion.gitVersion).toBe('v1.32.13');
    const second = seen.at(-1)!;
    expect(second).not.toBe(first);
    // and from the cache again afterwards: no further credential
    expect((await kubectlVersion()).code).toBe(0);
    expect(seen.at(-1)).toBe(second);
    expect(await minted()).toBe(before + 1);
  });
});
