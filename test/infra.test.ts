// infra/ cannot be run here (no Docker engine, no cluster), so this checks it against the public
// interface instead: images, ports and env names of CONTRACT.md, and every env name an app is given
// against that app's own env schema (so a renamed variable breaks this test, not a deployment).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { CONFIG_BUCKET_SETTINGS, deadLetterStreamSettings, ensureBucket, eventStreamSettings, natsConnectOptions, natsNames } from '@portcullis/protocol';
import { apiEnvSchema } from '../apps/api/src/config/env.js';
import { approvalsEnvSchema } from '../apps/approvals/src/env.js';
import { gatewayEnvSchema } from '../apps/gateway/src/env.js';
import { recorderEnvSchema } from '../apps/recorder/src/env.js';
import { freePort } from './support/free-port.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const infra = join(root, 'infra');
const read = (p: string): string => readFileSync(join(infra, p), 'utf8');

// CONTRACT.md "Ports".
const PORTS = { api: 8080, approvals: 8081, recorder: 8082, gatewayHttp: 8085, gatewayPg: 15432, idp: 8090 };

type Obj = Record<string, unknown>;
interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  profiles?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: Obj;
  volumes?: string[];
}

const compose = yaml.load(read('docker-compose.yml')) as { services: Record<string, ComposeService> };
const services = compose.services;

/** "127.0.0.1:8080:8080" → {host: 8080, container: 8080} */
function portMap(spec: string): { host: number; container: number } {
  const parts = spec.split(':');
  return { host: Number(parts.at(-2)), container: Number(parts.at(-1)) };
}

function schemaKeys(schema: z.ZodObject): string[] {
  return Object.keys(schema.shape);
}

/** Keys the schema rejects when absent: what a deployment must set. */
function requiredKeys(schema: z.ZodType): string[] {
  const r = schema.safeParse({});
  if (r.success) return [];
  return [...new Set(r.error.issues.map((i) => String(i.path[0])))];
}

const APPS = {
  api: { schema: apiEnvSchema, entry: 'apps/api/dist/main.js', ports: [PORTS.api] },
  approvals: { schema: approvalsEnvSchema, entry: 'apps/approvals/dist/main.js', ports: [PORTS.approvals] },
  recorder: { schema: recorderEnvSchema, entry: 'apps/recorder/dist/main.js', ports: [PORTS.recorder] },
  // A small young generation keeps 1,000 idle sessions under the 150 MB target (docs/performance.md).
  gateway: { schema: gatewayEnvSchema, entry: 'apps/gateway/dist/main.js', ports: [PORTS.gatewayPg, PORTS.gatewayHttp], nodeArgs: ['--max-semi-space-size=2'] },
} as const;

// Compose-only helpers that are not app configuration.
const COMPOSE_ONLY_ENV = new Set(['HEALTH_PORT']);

describe('infra/docker-compose.yml', () => {
  it('reads the apps\' env schemas (sanity check of this test)', () => {
    expect(requiredKeys(apiEnvSchema)).toContain('PORTCULLIS_MASTER_KEY');
    expect(requiredKeys(gatewayEnvSchema)).toContain('GATEWAY_POOL_KEY');
    expect(schemaKeys(gatewayEnvSchema as unknown as z.ZodObject)).toContain('GATEWAY_PG_PORT');
  });

  it('runs exactly Postgres 15, Redis 7 and NATS 2.10 with JetStream by default (the CONTRACT command)', () => {
    const defaults = Object.entries(services).filter(([, s]) => !s.profiles?.length).map(([n]) => n).sort();
    expect(defaults).toEqual(['nats', 'postgres', 'redis']);
    expect(services.postgres.image).toBe('postgres:15');
    expect(services.redis.image).toBe('redis:7');
    expect(services.nats.image).toMatch(/^nats:2\.10(-alpine)?$/);
    expect(services.nats.command).toContain('-js');
    expect(services.nats.volumes?.some((v) => v.endsWith(':/data'))).toBe(true);
    // NATS requires a user: one per app, passwords from infra/.env
    expect(services.nats.command?.slice(0, 2)).toEqual(['-c', '/etc/nats/nats-auth.conf']);
    expect(services.nats.volumes).toEqual(expect.arrayContaining(['./nats/nats-auth.conf:/etc/nats/nats-auth.conf:ro', './nats/auth.conf:/etc/nats/auth.conf:ro']));
    for (const u of ['API', 'APPROVALS', 'RECORDER', 'GATEWAY']) expect(services.nats.environment?.[`NATS_${u}_PASSWORD`]).toMatch(new RegExp(`^\\$\\{NATS_${u}_PASSWORD:\\?`));
    // The default local ports, where `pnpm start` looks for them; the default DATABASE_URL has no password.
    expect(services.postgres.ports!.map(portMap)).toEqual([{ host: 5432, container: 5432 }]);
    expect(services.redis.ports!.map(portMap)).toEqual([{ host: 6379, container: 6379 }]);
    expect(services.nats.ports!.map(portMap)).toContainEqual({ host: 4222, container: 4222 });
    expect(services.postgres.environment?.POSTGRES_HOST_AUTH_METHOD).toBe('trust');
    for (const s of ['postgres', 'redis', 'nats']) expect(services[s].healthcheck, s).toBeDefined();
  });

  it('has Keycloak as the IdP with the realm import, on the dev IdP port', () => {
    const kc = services.keycloak;
    expect(kc.image).toMatch(/^quay\.io\/keycloak\/keycloak:\d+/);
    expect(kc.command).toEqual(expect.arrayContaining(['start-dev', '--import-realm']));
    expect(kc.volumes).toContain('./keycloak/realm.json:/opt/keycloak/data/import/realm.json:ro');
    expect(kc.ports!.map(portMap)).toEqual([{ host: PORTS.idp, container: PORTS.idp }]);
  });

  it.each(Object.entries(APPS))('%s: built from infra/Dockerfile, CONTRACT ports, env its schema knows', (name, app) => {
    const s = services[name];
    expect(s, name).toBeDefined();
    expect(s.build).toEqual({ context: '..', dockerfile: 'infra/Dockerfile' });
    expect(s.command).toEqual(['node', ...('nodeArgs' in app ? app.nodeArgs : []), app.entry]);
    expect(s.ports!.map(portMap)).toEqual(app.ports.map((p) => ({ host: p, container: p })));
    const env = s.environment ?? {};
    const known = new Set(schemaKeys(app.schema as unknown as z.ZodObject));
    const unknown = Object.keys(env).filter((k) => !known.has(k) && !COMPOSE_ONLY_ENV.has(k));
    expect(unknown, `${name} is given env its schema does not read`).toEqual([]);
    for (const key of requiredKeys(app.schema)) expect(Object.keys(env), `${name} needs ${key}`).toContain(key);
    // Listen where the port mapping points.
    const portKey = { api: 'API_PORT', approvals: 'APPROVALS_HTTP_PORT', recorder: 'RECORDER_HTTP_PORT', gateway: 'GATEWAY_HTTP_PORT' }[name]!;
    expect(Number(env[portKey])).toBe(app.ports.at(-1));
    expect(Number(env.HEALTH_PORT)).toBe(app.ports.at(-1));
    expect(s.healthcheck).toBeDefined();
    // Services, not localhost, inside the compose network.
    // and NATS as the app's own user (infra/nats/auth.conf)
    expect(env.NATS_URL).toBe(`nats://${name}:\${NATS_${name.toUpperCase()}_PASSWORD:-}@nats:4222`);
    if (env.REDIS_URL) expect(env.REDIS_URL).toBe('redis://redis:6379');
    if (env.DATABASE_URL) expect(env.DATABASE_URL).toMatch(/^postgresql:\/\/[^@]+@postgres:5432\/portcullis$/);
  });

  it('wires the api to Keycloak and the gateway to its pool, with secrets from the environment', () => {
    const api = services.api.environment!;
    expect(api.OIDC_ISSUER_URL).toBe(`http://keycloak:${PORTS.idp}/realms/portcullis`);
    expect(api.OIDC_CLIENT_ID).toBe('portcullis-api');
    expect(api.OIDC_REDIRECT_URI).toBe(`http://127.0.0.1:${PORTS.api}/v1/auth/callback`);
    expect(api.GATEWAY_PUBLIC_PORT).toBe(String(PORTS.gatewayPg));
    for (const k of ['PORTCULLIS_MASTER_KEY', 'PORTCULLIS_BOOTSTRAP_TOKEN']) expect(api[k]).toBe(`\${${k}:-}`);
    const gw = services.gateway.environment!;
    expect(gw.GATEWAY_POOL).toBe('default');
    expect(gw.GATEWAY_POOL_KEY).toBe('${GATEWAY_POOL_KEY:-}');
    expect(gw.GATEWAY_PG_PORT).toBe(String(PORTS.gatewayPg));
    // The gateway trusts the api's snapshot keys, fetched once the api is up into a volume it reads.
    expect(gw.GATEWAY_CONFIG_PUBLIC_KEY_FILE).toBe('/keys/config-keys.json');
    expect(services.gateway.volumes).toContain('config-keys:/keys:ro');
    expect(services.gateway.depends_on?.['gateway-config-keys']).toEqual({ condition: 'service_completed_successfully' });
    expect(services['gateway-config-keys'].volumes).toContain('config-keys:/keys');
    expect(services['gateway-config-keys'].command!.join(' ')).toContain('http://api:8080/v1/gateway-config-keys');
    // Migrations run before any app touches the database.
    for (const name of ['api', 'approvals', 'recorder']) {
      expect(services[name].depends_on?.migrate).toEqual({ condition: 'service_completed_successfully' });
    }
    expect(services.migrate.command).toEqual(['node', 'libs/db/dist/migrate.cli.js']);
  });

  it('imports a Keycloak realm with the clients, users and groups of the dev IdP', () => {
    const realm = JSON.parse(read('keycloak/realm.json')) as {
      realm: string; groups: { name: string }[];
      users: { username: string; groups?: string[]; credentials?: { value: string }[] }[];
      clients: { clientId: string; secret?: string; publicClient: boolean; serviceAccountsEnabled?: boolean; redirectUris?: string[]; protocolMappers?: { protocolMapper: string; config: Record<string, string> }[] }[];
    };
    expect(realm.realm).toBe('portcullis');
    expect(realm.groups.map((g) => g.name)).toEqual(expect.arrayContaining(['admins', 'approvers', 'engineers', 'auditors']));
    const user = (n: string) => realm.users.find((u) => u.username === n);
    expect(user('alice')?.groups).toEqual(['/admins']);
    expect(user('bob')?.groups).toEqual(['/approvers']);
    expect(user('carol')?.groups).toEqual(['/engineers']);
    const client = (id: string) => realm.clients.find((c) => c.clientId === id)!;
    expect(client('portcullis-api')).toMatchObject({ publicClient: false, secret: 'portcullis-api-secret' });
    expect(client('portcullis-api').redirectUris).toContain(services.api.environment!.OIDC_REDIRECT_URI);
    expect(client('portcullis-api').protocolMappers!.some((m) => m.config['claim.name'] === 'groups')).toBe(true);
    expect(client('demo-agent')).toMatchObject({ publicClient: false, secret: 'demo-agent-secret', serviceAccountsEnabled: true });
    expect(client('demo-agent').protocolMappers!.find((m) => m.protocolMapper === 'oidc-audience-mapper')?.config['included.custom.audience']).toBe('portcullis');
    expect(client('portcullis-cli').publicClient).toBe(true);
  });
});

describe('infra/Dockerfile', () => {
  it('is a multi-stage node:20 build with the pinned pnpm, shipping every app', () => {
    const df = read('Dockerfile');
    const froms = [...df.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => m[1]);
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f).toMatch(/^node:20(\.|-|$)/);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { packageManager: string };
    expect(df).toContain(`npm install -g ${pkg.packageManager}`);
    expect(df).toContain('pnpm install --frozen-lockfile');
    expect(df).toContain('pnpm build');
    expect(df).toMatch(/^USER node$/m);
    for (const p of [PORTS.api, PORTS.approvals, PORTS.recorder, PORTS.gatewayHttp, PORTS.gatewayPg]) expect(df).toMatch(new RegExp(`EXPOSE .*\\b${p}\\b`));
    expect(existsSync(join(infra, 'Dockerfile.dockerignore'))).toBe(true);
  });

  it('copies the files the root postinstall runs before the first pnpm install (it builds ssh2\'s crypto binding)', () => {
    const df = read('Dockerfile');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const needed = [...(pkg.scripts.postinstall ?? '').matchAll(/\bscripts\/[\w./-]+/g)].map((m) => m[0]);
    expect(needed.length).toBeGreaterThan(0);
    const beforeInstall = df.slice(0, df.indexOf('RUN pnpm install'));
    for (const f of needed) {
      expect(existsSync(join(root, f))).toBe(true);
      expect(beforeInstall).toMatch(new RegExp(`^COPY .*\\b${f.replace(/[.]/g, '\\.')}\\b`, 'm'));
    }
  });
});

describe('infra/k8s', () => {
  const files = readdirSync(join(infra, 'k8s')).filter((f) => /\.ya?ml$/.test(f));
  const docs = files.flatMap((f) => (yaml.loadAll(read(`k8s/${f}`)) as Obj[]).filter(Boolean).map((d) => ({ file: f, doc: d })));
  const objects = docs.filter((d) => d.doc.kind !== 'Kustomization');
  // Manifests are checked field by field below; a loose type keeps that readable.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const byKind = (kind: string) => objects.filter((d) => d.doc.kind === kind).map((d) => d.doc as any);

  it('every object has apiVersion, kind and metadata.name; kustomization lists existing files', () => {
    expect(objects.length).toBeGreaterThanOrEqual(4);
    for (const { file, doc } of objects) {
      expect(doc.apiVersion, file).toEqual(expect.any(String));
      expect(doc.kind, file).toEqual(expect.any(String));
      expect((doc.metadata as Obj | undefined)?.name, file).toEqual(expect.any(String));
    }
    const kustomization = docs.find((d) => d.doc.kind === 'Kustomization')!.doc as { resources: string[] };
    for (const r of kustomization.resources) expect(existsSync(join(infra, 'k8s', r)), r).toBe(true);
  });

  it('runs a gateway Deployment per pool: ready on /readyz (config received), live on /healthz, CONTRACT ports', () => {
    const deployments = byKind('Deployment');
    expect(deployments.map((d) => d.metadata.name)).toContain('portcullis-gateway-default');
    for (const d of deployments) {
      const pool = d.metadata.labels['portcullis.dev/pool'];
      expect(pool, d.metadata.name).toEqual(expect.any(String));
      const tmplLabels = d.spec.template.metadata.labels;
      for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) expect(tmplLabels[k]).toBe(v);
      expect(d.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
      const [c] = d.spec.template.spec.containers;
      expect(c.command).toEqual(['node', ...APPS.gateway.nodeArgs, APPS.gateway.entry]);
      const ports = Object.fromEntries(c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]));
      expect(ports).toEqual({ postgres: PORTS.gatewayPg, http: PORTS.gatewayHttp });
      const probePort = (probe: { httpGet: { port: string | number } }) => (typeof probe.httpGet.port === 'string' ? ports[probe.httpGet.port] : probe.httpGet.port);
      expect(c.readinessProbe.httpGet.path).toBe('/readyz');
      expect(probePort(c.readinessProbe)).toBe(PORTS.gatewayHttp);
      expect(c.livenessProbe.httpGet.path).toBe('/healthz');
      expect(probePort(c.livenessProbe)).toBe(PORTS.gatewayHttp);

      const env = Object.fromEntries(c.env.map((e: { name: string }) => [e.name, e]));
      const known = new Set(schemaKeys(gatewayEnvSchema as unknown as z.ZodObject));
      expect(Object.keys(env).filter((k) => !known.has(k))).toEqual([]);
      for (const key of requiredKeys(gatewayEnvSchema)) expect(Object.keys(env)).toContain(key);
      expect(env.GATEWAY_POOL.value).toBe(pool);
      expect(env.GATEWAY_POOL_KEY.valueFrom.secretKeyRef).toEqual({ name: `portcullis-pool-${pool}`, key: 'pool-key' });
      expect(env.GATEWAY_ID.valueFrom.fieldRef.fieldPath).toBe('metadata.name');
      // NATS as the gateway user, and the pinned keys that config snapshots must be signed with
      expect(env.NATS_URL.valueFrom.secretKeyRef).toEqual({ name: 'portcullis-gateway-nats', key: 'url' });
      expect(env.GATEWAY_CONFIG_PUBLIC_KEY.valueFrom.configMapKeyRef).toEqual({ name: 'portcullis-config-keys', key: 'config-keys.json' });
      expect(env.GATEWAY_PG_PORT.value).toBe(String(PORTS.gatewayPg));
      expect(env.GATEWAY_HTTP_PORT.value).toBe(String(PORTS.gatewayHttp));
      // TLS from a mounted secret, both halves or neither (the gateway refuses one without the other).
      expect(Boolean(env.GATEWAY_TLS_CERT)).toBe(Boolean(env.GATEWAY_TLS_KEY));
      expect(env.GATEWAY_ALLOW_PLAINTEXT).toBeUndefined();
    }
  });

  it('has a Service and a PodDisruptionBudget that select each pool\'s gateways', () => {
    for (const d of byKind('Deployment')) {
      const pool = d.metadata.labels['portcullis.dev/pool'];
      const podLabels = d.spec.template.metadata.labels;
      const selects = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => podLabels[k] === v);
      const svc = byKind('Service').find((s) => s.metadata.labels?.['portcullis.dev/pool'] === pool);
      expect(svc, `Service for pool ${pool}`).toBeDefined();
      expect(selects(svc.spec.selector)).toBe(true);
      const containerPorts = new Set(d.spec.template.spec.containers[0].ports.map((p: { name: string }) => p.name));
      for (const p of svc.spec.ports) expect(containerPorts.has(p.targetPort)).toBe(true);
      expect(svc.spec.ports.find((p: { name: string }) => p.name === 'postgres').port).toBe(PORTS.gatewayPg);
      const pdb = byKind('PodDisruptionBudget').find((p) => p.metadata.labels?.['portcullis.dev/pool'] === pool);
      expect(pdb, `PodDisruptionBudget for pool ${pool}`).toBeDefined();
      expect(pdb.apiVersion).toBe('policy/v1');
      expect(selects(pdb.spec.selector.matchLabels)).toBe(true);
      expect(pdb.spec.maxUnavailable ?? pdb.spec.minAvailable).toBeDefined();
      expect(d.spec.replicas).toBeGreaterThan(Number(pdb.spec.maxUnavailable ?? 0));
    }
  });
});

describe('infra/nats', () => {
  it('configures a three-node cluster with JetStream', () => {
    const conf = read('nats/nats-cluster.conf');
    expect(conf).toMatch(/^jetstream\s*\{/m);
    expect(conf).toMatch(/^cluster\s*\{/m);
    expect([...conf.matchAll(/nats-route:\/\/(nats-\d):6222/g)].map((m) => m[1])).toEqual(['nats-1', 'nats-2', 'nats-3']);
    expect(conf).toMatch(/server_name:\s*\$SERVER_NAME/);
    const cluster = yaml.load(read('nats/docker-compose.cluster.yml')) as { services: Record<string, ComposeService & { environment: Record<string, string> }> };
    expect(Object.keys(cluster.services).sort()).toEqual(['nats-1', 'nats-2', 'nats-3']);
    for (const [name, s] of Object.entries(cluster.services)) expect(s.environment.SERVER_NAME).toBe(name);
  });

  it('replicates the event streams three times, under the names the apps use', () => {
    const names = natsNames('portcullis');
    const events = JSON.parse(read('nats/streams/events.json'));
    expect(events).toMatchObject({ ...eventStreamSettings(names), num_replicas: 3 });
    const dead = JSON.parse(read('nats/streams/deadletter.json'));
    expect(dead).toMatchObject({ ...deadLetterStreamSettings(names), num_replicas: 3 });
    const script = read('nats/create-streams.sh');
    expect(script).toContain(`kv add ${names.configBucket} --replicas 3 --history ${CONFIG_BUCKET_SETTINGS.history}`);
  });
});

describe('infra/nats/nats-auth.conf on a real nats-server', () => {
  it('lets each app in as its own user; only the api writes the config bucket (gateways read it); only gateways hear the cancel relay; no user, no entry', async () => {
    const port = await freePort();
    const monitor = await freePort();
    const store = mkdtempSync(join(tmpdir(), 'portcullis-nats-auth-'));
    const pw = { api: 'api-pw-1', approvals: 'appr-pw-2', recorder: 'rec-pw-3', gateway: 'gw-pw-4' };
    const server = spawn('/usr/sbin/nats-server', ['-c', join(infra, 'nats/nats-auth.conf'), '-a', '127.0.0.1', '-p', String(port), '-m', String(monitor), '-sd', store], {
      env: { NATS_API_PASSWORD: pw.api, NATS_APPROVALS_PASSWORD: pw.approvals, NATS_RECORDER_PASSWORD: pw.recorder, NATS_GATEWAY_PASSWORD: pw.gateway },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    server.stderr!.on('data', (b: Buffer) => (log += b.toString()));
    try {
      const end = Date.now() + 10_000;
      while (!log.includes('Server is ready')) {
        if (server.exitCode !== null || Date.now() > end) throw new Error(`nats-server did not start: ${log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const as = (user: keyof typeof pw | null, password?: string) =>
        connect({ ...natsConnectOptions(user ? `nats://${user}:${password ?? pw[user]}@127.0.0.1:${port}` : `nats://127.0.0.1:${port}`), maxReconnectAttempts: 0 });
      const { configBucket, configKey } = natsNames('portcullis');

      const api = await as('api');
      const kv = await ensureBucket(new Kvm(api), configBucket);
      await kv.put(configKey('default'), '{"jws":"from the api"}');

      const gw = await as('gateway');
      // the gateway's user may not create it: ensureBucket opens it
      const gwKv = await ensureBucket(new Kvm(gw), configBucket);
      expect(new TextDecoder().decode((await gwKv.get(configKey('default')))!.value)).toBe('{"jws":"from the api"}');
      await expect(gwKv.put(configKey('default'), '{"jws":"forged"}')).rejects.toThrow(/permission|timeout|no responders/i);
      await expect(gwKv.delete(configKey('default'))).rejects.toThrow();
      expect(new TextDecoder().decode((await kv.get(configKey('default')))!.value)).toBe('{"jws":"from the api"}');

      // the approvals app and the recorder cannot write it either (not even an old signed snapshot back),
      // and only gateways may listen to the cancel relay, which carries sessions' cancel keys
      const cancelSubject = natsNames('portcullis').cancel('default');
      for (const user of ['approvals', 'recorder'] as const) {
        const c = await as(user);
        const otherKv = await ensureBucket(new Kvm(c), configBucket);
        await expect(otherKv.put(configKey('default'), '{"jws":"replayed"}')).rejects.toThrow(/permission|timeout|no responders/i);
        await c.close().catch(() => undefined);
      }
      for (const user of ['api', 'approvals', 'recorder'] as const) {
        const c = await as(user);
        const refused = new Promise<Error>((resolve) => c.subscribe(cancelSubject, { callback: (err) => err && resolve(err) }));
        expect((await refused).message).toMatch(/permissions violation/i);
        await c.close().catch(() => undefined);
      }
      const gwListens = gw.subscribe(cancelSubject, { max: 1 });
      await gw.flush();
      await (async () => {
        const pub = await as('gateway');
        pub.publish(cancelSubject, '{"pid":1}');
        await pub.flush();
        for await (const m of gwListens) expect(m.string()).toBe('{"pid":1}');
        await pub.close();
      })();
      expect(new TextDecoder().decode((await kv.get(configKey('default')))!.value)).toBe('{"jws":"from the api"}');
      await expect(as(null)).rejects.toThrow(/Authorization Violation/);
      await expect(as('gateway', 'wrong')).rejects.toThrow(/Authorization Violation/);
      await Promise.all([api.close(), gw.close().catch(() => undefined)]);
    } finally {
      server.kill('SIGKILL');
      rmSync(store, { recursive: true, force: true });
    }
  }, 30_000);
});
