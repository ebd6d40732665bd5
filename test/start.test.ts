// `pnpm start` (scripts/start.mjs and scripts/lib/*): the pieces against the local services, and the
// whole script as a child process with its own ports, database, NATS prefix and .portcullis/.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM scripts without type declarations
import { ConfigError, loadConfig } from '../scripts/lib/config.mjs';
// @ts-expect-error idem
import { formatLogLine } from '../scripts/lib/children.mjs';
// @ts-expect-error idem
import { ensureDemoDatabase, luhnValid, syntheticCustomers } from '../scripts/lib/demo-db.mjs';
// @ts-expect-error idem
import { ensureHome } from '../scripts/lib/home.mjs';
// @ts-expect-error idem
import { apiClient } from '../scripts/lib/http.mjs';
// @ts-expect-error idem
import { demoPolicy, seedDemo } from '../scripts/lib/seed.mjs';
// @ts-expect-error idem
import { checkServices } from '../scripts/lib/services.mjs';
// @ts-expect-error idem
import { connectionsUnderAnotherKey } from '../scripts/lib/master-key-check.mjs';
import { freePort } from './support/free-port.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const ADMIN_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';
const suffix = `${process.pid}_${Date.now().toString(36)}`;
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function dropDatabase(name: string, role?: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    if (role) await c.query(`DROP ROLE IF EXISTS "${role}"`);
  } finally {
    await c.end();
  }
}


function tempHome(): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-home-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, '.portcullis');
}

describe('start script configuration', () => {
  it('uses the CONTRACT defaults and takes every override from env', () => {
    const d = loadConfig({});
    expect(d.ports).toEqual({ api: 8080, approvals: 8081, recorder: 8082, gatewayHttp: 8085, gatewayPg: 15432, gatewaySsh: 2222, gatewayKube: 8443, idp: 8090 });
    expect(d.databaseUrl).toBe('postgresql://postgres@127.0.0.1:5432/portcullis');
    expect(d.natsPrefix).toBe('portcullis');
    expect(d.home).toBe(join(root, '.portcullis'));
    expect(d.demo).toEqual({ database: 'portcullis_demo', role: 'portcullis_demo_owner', connection: 'demo' });
    const o = loadConfig({ API_PORT: '18080', NATS_PREFIX: 't1', PORTCULLIS_HOME: '/tmp/x', PORTCULLIS_DEMO_DB: 'demo_x' });
    expect(o.apiUrl).toBe('http://127.0.0.1:18080');
    expect(o.home).toBe('/tmp/x');
    expect(o.demo.role).toBe('demo_x_owner');
  });

  it.each([
    [{ API_PORT: 'eighty' }, 'API_PORT: expected a port number, got "eighty"'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL: expected postgres:// or postgresql://, got "mysql://x"'],
    [{ NATS_PREFIX: 'a.b' }, 'NATS_PREFIX: letters, digits, _ and - only, got "a.b"'],
    [{ API_PORT: '9000', DEV_IDP_PORT: '9000' }, 'ports: api and idp both use 9000'],
    [{ PORTCULLIS_DEMO_DB: 'Demo; DROP' }, 'PORTCULLIS_DEMO_DB: a lower-case SQL identifier, got "Demo; DROP"'],
  ])('rejects %j with one line', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});

describe('app output', () => {
  it('shortens pino lines, shows http requests as one line, hides start-up chatter', () => {
    expect(formatLogLine('{"level":30,"time":1,"pid":1,"hostname":"h","msg":"config applied","pool":"default","revision":3}'))
      .toBe('INFO  config applied pool=default revision=3');
    expect(formatLogLine('{"level":40,"time":1,"req":{"method":"GET","url":"/cb?code=abc&x=1"},"res":{"statusCode":404},"responseTime":7,"msg":"request completed"}'))
      .toBe('WARN  GET /cb?code=…&x=1 404 7ms');
    expect(formatLogLine(JSON.stringify({ level: 50, msg: 'boom', err: { message: 'bad', stack: 'Error: bad\n    at x' } }))).toBe('ERROR boom err="bad" \nError: bad\n    at x');
    expect(formatLogLine('{"level":30,"msg":"Mapped {/v1/me, GET} route","context":"RouterExplorer"}')).toBeNull();
    expect(formatLogLine('oidc-provider WARNING: Unsupported runtime. Use Node.js v22.x LTS, or a later LTS release.')).toBeNull();
    expect(formatLogLine('api: listening on :8080')).toBe('api: listening on :8080');
    expect(formatLogLine('{not json')).toBe('{not json');
  });
});

describe('service checks', () => {
  it('pass against the local Postgres, Redis and NATS with JetStream', async () => {
    const r = await checkServices(loadConfig({}));
    expect(r.results.map((x: { line: string }) => x.line)).toEqual([
      expect.stringMatching(/^Postgres at 127\.0\.0\.1:5432: Postgres 1\d/),
      'Redis at 127.0.0.1:6379: Redis PONG',
      expect.stringMatching(/^NATS at 127\.0\.0\.1:4222: NATS 2\.\d+\.\d+ with JetStream$/),
    ]);
    expect(r.ok).toBe(true);
  });

  it('say in one line each which service is missing and how to start it', async () => {
    const closed = await freePort();
    // A port that answers, but not as NATS.
    const http = createServer((_q, s) => s.end());
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => http.close(() => r())));
    const wrong = (http.address() as AddressInfo).port;
    const cfg = loadConfig({
      DATABASE_URL: `postgresql://postgres@127.0.0.1:${closed}/portcullis`,
      REDIS_URL: `redis://127.0.0.1:${closed}`,
      NATS_URL: `nats://127.0.0.1:${wrong}`,
    });
    const r = await checkServices(cfg, 500);
    expect(r.ok).toBe(false);
    const lines = r.results.map((x: { line: string }) => x.line);
    expect(lines[0]).toBe(`Postgres is not answering at 127.0.0.1:${closed} (connection refused): start it with \`docker compose -f infra/docker-compose.yml up -d postgres\` (or your own server) or point DATABASE_URL at one`);
    expect(lines[1]).toContain(`Redis is not answering at 127.0.0.1:${closed} (connection refused)`);
    expect(lines[2]).toMatch(new RegExp(`^NATS is not answering at 127\\.0\\.0\\.1:${wrong} \\((no answer|this port does not speak NATS|connection closed)\\): start it with \`docker compose -f infra/docker-compose.yml up -d nats\``));
    for (const l of lines) expect(l).not.toContain('\n');
  });
});

describe('a NATS that wants a user (infra/docker-compose.yml)', () => {
  it('gets one line saying to put the user in NATS_URL; with it the check passes', async () => {
    const port = await freePort();
    const store = mkdtempSync(join(tmpdir(), 'portcullis-nats-user-'));
    const server = spawn('/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', String(port), '-m', '0', '-js', '-sd', store, '--user', 'api', '--pass', 'pw1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(() => {
      server.kill('SIGKILL');
      rmSync(store, { recursive: true, force: true });
    });
    let log = '';
    server.stderr!.on('data', (b: Buffer) => (log += b.toString()));
    for (const end = Date.now() + 10_000; !log.includes('Server is ready'); ) {
      if (Date.now() > end || server.exitCode !== null) throw new Error(`nats-server did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const without = await checkServices(loadConfig({ NATS_URL: `nats://127.0.0.1:${port}` }));
    expect(without.ok).toBe(false);
    expect(without.results[2].line).toBe(`NATS at 127.0.0.1:${port} requires a user, and NATS_URL has none: set NATS_URL=nats://api:<NATS_API_PASSWORD from infra/.env>@127.0.0.1:${port}`);
    const withUser = await checkServices(loadConfig({ NATS_URL: `nats://api:pw1@127.0.0.1:${port}` }));
    expect(withUser.results[2]).toMatchObject({ ok: true });
  });
});

describe('.portcullis/', () => {
  it('is created 0700 with 0600 secrets, and reused as it is on the next run', async () => {
    const home = tempHome();
    const first = await ensureHome(home, { root });
    expect(first.bootstrapCreated).toBe(true);
    expect(statSync(home).mode & 0o777).toBe(0o700);
    for (const f of ['master-key', 'bootstrap-token', 'demo-db-password', 'pool-default.key', 'pool-default.pub']) {
      expect(statSync(join(home, f)).mode & 0o777, f).toBe(0o600);
    }
    expect(first.masterKey).toMatch(/^[0-9a-f]{64}$/);
    expect(first.bootstrapToken.length).toBeGreaterThanOrEqual(32);
    expect(Buffer.from(first.poolPublicKey, 'base64url')).toHaveLength(32);
    const second = await ensureHome(home, { root });
    expect(second.bootstrapCreated).toBe(false);
    expect(second).toEqual({ ...first, bootstrapCreated: false });
  });

  it('refuses a damaged secret with a line saying what to do', async () => {
    const home = tempHome();
    await ensureHome(home, { root });
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(home, 'master-key'), 'nope\n');
    await expect(ensureHome(home, { root })).rejects.toThrow(/master-key exists but does not hold a valid value; delete it/);
  });
});

describe('the demo target database', () => {
  it('has ~50 obviously synthetic customers', () => {
    const rows = syntheticCustomers(50);
    expect(rows).toHaveLength(50);
    expect(new Set(rows.map((r: { email: string }) => r.email)).size).toBe(50);
    for (const r of rows) {
      expect(luhnValid(r.card_number)).toBe(true);
      expect(r.card_number).toMatch(/^(4111 1111|5555 5511) 1111 \d{4}$/);
      expect(r.phone).toMatch(/^\+1-202-555-01\d\d$/);
      expect(r.ssn).toMatch(/^9\d\d-\d\d-\d{4}$/);
      expect(r.email).toMatch(/@example\.com$/);
    }
    expect(luhnValid('4111 1111 1111 1111')).toBe(true);
    expect(luhnValid('4111 1111 1111 1112')).toBe(false);
  });

  it('is created with its owner role and password, idempotently', async () => {
    const database = `pc_demo_t_${suffix}`;
    const role = `${database}_owner`;
    cleanups.push(() => dropDatabase(database, role));
    const first = await ensureDemoDatabase('postgresql://postgres@127.0.0.1:5432/portcullis', { database, role, password: 'first-password' });
    expect(first).toEqual({ createdDatabase: true, insertedRows: 50, host: '127.0.0.1', port: 5432 });
    const again = await ensureDemoDatabase('postgresql://postgres@127.0.0.1:5432/portcullis', { database, role, password: 'second-password' });
    expect(again).toMatchObject({ createdDatabase: false, insertedRows: 0 });
    const c = new pg.Client({ connectionString: `postgresql://postgres@127.0.0.1:5432/${database}` });
    await c.connect();
    try {
      const { rows } = await c.query(`SELECT count(*)::int AS n, (SELECT tableowner FROM pg_tables WHERE tablename = 'customers') AS owner,
        (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()) AS dbowner FROM customers`);
      expect(rows[0]).toEqual({ n: 50, owner: role, dbowner: role });
      const { rows: cols } = await c.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'customers' ORDER BY ordinal_position`);
      expect(cols.map((r) => r.column_name)).toEqual(['id', 'name', 'email', 'phone', 'card_number', 'ssn', 'notes']);
      const { rows: pw } = await c.query('SELECT rolpassword IS NOT NULL AS set, rolsuper FROM pg_authid WHERE rolname = $1', [role]);
      expect(pw[0]).toEqual({ set: true, rolsuper: false });
    } finally {
      await c.end();
    }
  });
});

describe('seeding the demo over REST', () => {
  it('creates everything once, then converges without duplicates on a second run', async () => {
    // A stand-in for the api: stores what it is given, 409 on a second create.
    const store = new Map<string, unknown>();
    const calls: string[] = [];
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        calls.push(`${req.method} ${req.url}`);
        const send = (status: number, json?: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(json === undefined ? '' : JSON.stringify(json));
        };
        if (req.headers.authorization !== 'Bearer boot') return send(401, { error: { code: 'unauthenticated', message: 'no' } });
        const data = body ? JSON.parse(body) : undefined;
        const url = req.url!;
        if (req.method === 'POST') {
          const key = `${url}/${data.name ?? data.subject}`;
          if (store.has(key)) return send(409, { error: { code: 'conflict', message: 'exists' } });
          store.set(key, req.url === '/v1/policies' ? { document: data, version: 1 } : data);
          return send(201, data);
        }
        if (req.method === 'GET') return store.has(url) ? send(200, store.get(url)) : send(404, { error: { code: 'not_found', message: 'no' } });
        if (req.method === 'PUT' || req.method === 'PATCH') {
          store.set(`${req.method} ${url}`, data);
          return send(200, data);
        }
        return send(405);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const demo = {
      pool: 'default', poolPublicKey: 'pub', idpIssuer: 'http://127.0.0.1:8090', connection: 'demo',
      target: { host: '127.0.0.1', port: 5432, database: 'portcullis_demo', username: 'portcullis_demo_owner', password: 'pw' },
    };
    const log1: string[] = [];
    await seedDemo(apiClient(base, 'boot'), demo, (l: string) => log1.push(l));
    expect(log1).toEqual([
      'group admins: created', 'group approvers: created', 'group engineers: created', 'group auditors: created',
      'identity alice: created', 'identity bob: created', 'identity carol: created',
      'pool default: public key registered', 'policy default: created', 'connection demo: created', 'trust policy demo-agent: created',
    ]);
    expect(store.get('/v1/groups/approvers')).toEqual({ name: 'approvers', description: expect.any(String), roles: ['approver', 'auditor'], idpGroups: ['approvers'] });
    expect(store.get('PUT /v1/groups/admins/members')).toEqual({ members: ['alice'] });
    expect(store.get('PUT /v1/gateway-pools/default')).toEqual({ publicKey: 'pub' });
    expect(store.get('/v1/connections/demo')).toMatchObject({
      pool: 'default', host: '127.0.0.1', database: 'portcullis_demo', username: 'portcullis_demo_owner', password: 'pw',
      allowedGroups: ['engineers', 'admins'], policy: 'default', recording: 'required',
    });
    expect(store.get('/v1/trust-policies/demo-agent')).toEqual({
      name: 'demo-agent', issuer: 'http://127.0.0.1:8090', audience: 'portcullis', subjectPattern: 'demo-agent', identity: 'agent:demo', groups: ['engineers'],
    });
    const policy = demoPolicy();
    expect(policy.guardrails.map((g: { name: string; action: string }) => `${g.name}:${g.action}`)).toEqual([
      'no-destructive-ddl:block', 'no-session-killing:block', 'no-copy-program:block', 'bulk-writes:require_approval', 'big-writes:require_approval',
      'no-recursive-delete-of-root:block', 'no-find-delete-of-root:block', 'no-mkfs:block', 'no-raw-disk-writes:block',
      'no-redirects-to-disks:block', 'no-copies-to-disks:block', 'no-power-off:block', 'no-systemctl-power-off:block', 'no-fork-bombs:block',
      'no-download-to-shell:block', 'no-recursive-chmod-of-root:block', 'system-config-writes:require_approval',
      'tee-into-system-config:require_approval', 'privilege-escalation:require_approval', 'no-system-config-uploads:block', 'no-key-downloads:block',
    ]);
    expect(policy.approval).toEqual({ approvers: ['approvers'], timeoutSeconds: 300 });

    calls.length = 0;
    const log2: string[] = [];
    await seedDemo(apiClient(base, 'boot'), { ...demo, target: { ...demo.target, password: 'new-pw' } }, (l: string) => log2.push(l));
    expect(log2).toContain('group admins: exists');
    expect(log2).toContain('policy default: up to date');
    expect(log2).toContain('connection demo: updated');
    expect(log2).toContain('trust policy demo-agent: exists');
    expect(store.get('PATCH /v1/connections/demo')).toMatchObject({ password: 'new-pw', host: '127.0.0.1' });
    expect(calls.filter((c) => c.startsWith('DELETE'))).toEqual([]);
  });
});

const entryPoints = ['apps/api/dist/main.js', 'apps/api/dist/dev-idp/dev-idp.main.js', 'apps/gateway/dist/main.js', 'apps/approvals/dist/main.js', 'apps/recorder/dist/main.js'];
const built = entryPoints.every((e) => existsSync(join(root, e)));

describe('scripts/start.mjs as a child process', () => {
  function start(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null>; waitFor: (text: string, ms: number) => Promise<void> } {
    const child = spawn(process.execPath, [join(root, 'scripts/start.mjs')], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    cleanups.push(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    const waitFor = async (text: string, ms: number) => {
      const deadline = Date.now() + ms;
      while (!out.includes(text)) {
        if (child.exitCode !== null) throw new Error(`start.mjs exited ${child.exitCode} before "${text}":\n${out.slice(-4000)}`);
        if (Date.now() > deadline) throw new Error(`no "${text}" after ${ms}ms:\n${out.slice(-4000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    return { child, output: () => out, exited, waitFor };
  }

  it('stops with one line per missing service and exit 1, before touching anything', async () => {
    const closed = await freePort();
    const home = tempHome();
    const s = start({ REDIS_URL: `redis://127.0.0.1:${closed}`, PORTCULLIS_HOME: home });
    expect(await s.exited).toBe(1);
    expect(s.output()).toContain(`✗ Redis is not answering at 127.0.0.1:${closed} (connection refused): start it with \`docker compose -f infra/docker-compose.yml up -d redis\``);
    expect(s.output()).toContain('✓ Postgres at 127.0.0.1:5432');
    expect(s.output()).not.toMatch(/\n\s+at /); // no stack trace
    expect(existsSync(home)).toBe(false);
  });

  it('rejects a bad override with one line and exit 1', async () => {
    const s = start({ API_PORT: 'x' });
    expect(await s.exited).toBe(1);
    expect(s.output().trim()).toBe('✗ API_PORT: expected a port number, got "x"');
  });

  it.skipIf(!built)('runs an isolated stack: ready line, demo seeded, Ctrl-C stops everything; a second run reuses .portcullis/', { timeout: 240_000 }, async () => {
    const ports = { API_PORT: 0, APPROVALS_HTTP_PORT: 0, RECORDER_HTTP_PORT: 0, GATEWAY_HTTP_PORT: 0, GATEWAY_PG_PORT: 0, GATEWAY_SSH_PORT: 0, GATEWAY_KUBERNETES_PORT: 0, DEV_IDP_PORT: 0 };
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
    const home = tempHome();
    const database = `portcullis_start_${suffix}`;
    const demoDb = `pc_demo_start_${suffix}`;
    cleanups.push(() => dropDatabase(database));
    cleanups.push(() => dropDatabase(demoDb, `${demoDb}_owner`));
    const env = {
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
      PORTCULLIS_HOME: home,
      DATABASE_URL: `postgresql://postgres@127.0.0.1:5432/${database}`,
      NATS_PREFIX: `pcst${suffix}`.replace(/_/g, '-'),
      APPROVALS_QUEUE_PREFIX: `pcst-${suffix}`,
      PORTCULLIS_DEMO_DB: demoDb,
      PORTCULLIS_SKIP_BUILD: '1',
      PORTCULLIS_READY_TIMEOUT_MS: '90000',
    };

    const first = start(env);
    await first.waitFor('Portcullis is ready', 150_000);
    const token = readFileSync(join(home, 'bootstrap-token'), 'utf8').trim();
    expect(first.output()).toContain(`Bootstrap admin token (shown once; also in ${join(home, 'bootstrap-token')}):\n  ${token}`);
    expect(first.output()).toContain(`psql "$URI" -c 'SELECT name, email, phone, card_number, ssn FROM customers LIMIT 5'`);
    const api = `http://127.0.0.1:${ports.API_PORT}`;
    const conn = await fetch(`${api}/v1/connections/demo`, { headers: { authorization: `Bearer ${token}` } });
    expect(conn.status).toBe(200);
    expect(JSON.stringify(await conn.json())).not.toContain(readFileSync(join(home, 'demo-db-password'), 'utf8').trim());
    let sshdPort: number | null = null;
    if (existsSync('/usr/sbin/sshd')) {
      // the SSH demo: a private sshd registered as demo-ssh, pinned to its host key, and the command to try
      expect(first.output()).toContain(`ssh -p ${ports.GATEWAY_SSH_PORT} demo-ssh@127.0.0.1`);
      const ssh = await (await fetch(`${api}/v1/connections/demo-ssh`, { headers: { authorization: `Bearer ${token}` } })).json() as { type: string; port: number; hostKeys: string[] };
      expect(ssh).toMatchObject({ type: 'ssh', host: '127.0.0.1', hostKeys: [readFileSync(join(home, 'sshd', 'host_ed25519.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ')] });
      sshdPort = ssh.port;
      expect(JSON.stringify(ssh)).not.toContain('PRIVATE KEY');
    } else {
      expect(first.output()).toContain('SSH demo: off here');
    }
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);
    // Every port is free again: nothing left running.
    for (const p of [...Object.values(ports), ...(sshdPort ? [sshdPort] : [])]) {
      const srv = createTcpServer();
      await new Promise<void>((resolve, reject) => { srv.once('error', reject); srv.listen(p, '127.0.0.1', resolve); });
      await new Promise<void>((r) => srv.close(() => r()));
    }

    const second = start(env);
    await second.waitFor('Portcullis is ready', 150_000);
    expect(second.output()).not.toContain('Bootstrap admin token');
    expect(second.output()).toContain('seed: group admins: exists');
    expect(second.output()).toContain('seed: connection demo: updated');
    expect(readFileSync(join(home, 'bootstrap-token'), 'utf8').trim()).toBe(token);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});

describe('a master key that does not match the database', () => {
  const database = `portcullis_keycheck_${suffix}`;
  const url = `postgresql://postgres@127.0.0.1:5432/${database}`;
  const ours = randomBytes(32).toString('hex');
  const theirs = randomBytes(32).toString('hex');

  it.skipIf(!built)('is found: the connections whose secret this key cannot open', async () => {
    cleanups.push(() => dropDatabase(database));
    const { ensureDatabase, migrate } = await import(join(root, 'libs/db/dist/migrate.js'));
    await ensureDatabase(url);
    await migrate(url, join(root, 'prisma/migrations'));
    const { deriveKey, encryptAtRest, parseMasterKey } = await import('@portcullis/protocol');
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    for (const [name, key] of [['demo', ours], ['peer', theirs], ['zeta', theirs]] as const) {
      await c.query(
        'INSERT INTO "Connection" ("id", "name", "host", "database", "username", "secretCiphertext", "allowedGroups", "updatedAt") VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, now())',
        [name, '127.0.0.1', 'app', 'app', encryptAtRest(deriveKey(parseMasterKey(key)!, 'secrets-at-rest'), 'pw', name), []],
      );
    }
    await c.end();
    expect(await connectionsUnderAnotherKey(url, ours, root)).toEqual(['peer', 'zeta']);
    expect(await connectionsUnderAnotherKey(url, theirs, root)).toEqual(['demo']);
  });

  it.skipIf(!built)('stops `pnpm start` at once with one line saying what to do', async () => {
    const home = tempHome();
    mkdirSync(home, { recursive: true, mode: 0o700 });
    writeFileSync(join(home, 'master-key'), `${ours}\n`, { mode: 0o600 });
    const started = Date.now();
    const child = spawn(process.execPath, [join(root, 'scripts/start.mjs')], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', PORTCULLIS_HOME: home, DATABASE_URL: url, PORTCULLIS_SKIP_BUILD: '1', PORTCULLIS_DEMO_DB: `pc_demo_keycheck_${suffix}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(1);
    const lines = out.trim().split('\n');
    expect(lines.at(-1)).toBe(
      `✗ database ${database} holds connection secrets (peer, zeta) stored with another master key than ${join(home, 'master-key')} — ` +
        'another checkout\'s .portcullis/ uses this database: start with that one (PORTCULLIS_HOME=<other checkout>/.portcullis), ' +
        'point DATABASE_URL at another database, or run `pnpm start --reset-demo` to delete those connections and seed the demo again',
    );
    // before any app, the demo database or a port was touched
    expect(out).not.toContain('demo target');
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);
});
