// Everything `pnpm start` needs to know, from env with the CONTRACT.md defaults. Every port, URL and name
// can be overridden so a test can run an isolated copy of the whole stack beside a developer's.
import { resolve } from 'node:path';

export const ROOT = resolve(new URL('../..', import.meta.url).pathname);

const DEFAULTS = {
  DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/portcullis',
  REDIS_URL: 'redis://127.0.0.1:6379',
  NATS_URL: 'nats://127.0.0.1:4222',
  NATS_PREFIX: 'portcullis',
  API_PORT: '8080',
  APPROVALS_HTTP_PORT: '8081',
  RECORDER_HTTP_PORT: '8082',
  GATEWAY_HTTP_PORT: '8085',
  GATEWAY_PG_PORT: '15432',
  GATEWAY_SSH_PORT: '2222',
  GATEWAY_KUBERNETES_PORT: '8443',
  DEV_IDP_PORT: '8090',
  GATEWAY_POOL: 'default',
  LOG_LEVEL: 'info',
};

function str(env, key) {
  const v = env[key];
  return v === undefined || v.trim() === '' ? DEFAULTS[key] : v.trim();
}

export class ConfigError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ConfigError';
  }
}

function port(env, key) {
  const raw = str(env, key);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new ConfigError(`${key}: expected a port number, got "${raw}"`);
  return n;
}

function url(env, key, protocols) {
  const raw = str(env, key);
  let u;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(`${key}: expected a URL, got "${raw}"`);
  }
  if (!protocols.includes(u.protocol)) throw new ConfigError(`${key}: expected ${protocols.map((p) => `${p}//`).join(' or ')}, got "${raw}"`);
  return u;
}

/** Reads the start script's configuration; throws ConfigError naming the bad key. */
export function loadConfig(env = process.env) {
  const database = url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  const redis = url(env, 'REDIS_URL', ['redis:']);
  const nats = url(env, 'NATS_URL', ['nats:']);
  const prefix = str(env, 'NATS_PREFIX');
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(prefix)) throw new ConfigError(`NATS_PREFIX: letters, digits, _ and - only, got "${prefix}"`);
  const demoDb = env.PORTCULLIS_DEMO_DB?.trim() || 'portcullis_demo';
  const demoRole = env.PORTCULLIS_DEMO_ROLE?.trim() || `${demoDb}_owner`;
  for (const [k, v] of [['PORTCULLIS_DEMO_DB', demoDb], ['PORTCULLIS_DEMO_ROLE', demoRole]]) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(v)) throw new ConfigError(`${k}: a lower-case SQL identifier, got "${v}"`);
  }
  const ports = {
    api: port(env, 'API_PORT'),
    approvals: port(env, 'APPROVALS_HTTP_PORT'),
    recorder: port(env, 'RECORDER_HTTP_PORT'),
    gatewayHttp: port(env, 'GATEWAY_HTTP_PORT'),
    gatewayPg: port(env, 'GATEWAY_PG_PORT'),
    gatewaySsh: port(env, 'GATEWAY_SSH_PORT'),
    gatewayKube: port(env, 'GATEWAY_KUBERNETES_PORT'),
    idp: port(env, 'DEV_IDP_PORT'),
  };
  const seen = new Map();
  for (const [name, p] of Object.entries(ports)) {
    if (seen.has(p)) throw new ConfigError(`ports: ${seen.get(p)} and ${name} both use ${p}`);
    seen.set(p, name);
  }
  const home = resolve(ROOT, env.PORTCULLIS_HOME?.trim() || '.portcullis');
  const readyTimeoutMs = Number(env.PORTCULLIS_READY_TIMEOUT_MS ?? 90_000);
  return {
    root: ROOT,
    home,
    databaseUrl: database.href,
    database,
    redisUrl: redis.href,
    redis,
    natsUrl: nats.href,
    nats,
    natsPrefix: prefix,
    approvalsQueuePrefix: env.APPROVALS_QUEUE_PREFIX?.trim() || undefined,
    pool: str(env, 'GATEWAY_POOL'),
    logLevel: str(env, 'LOG_LEVEL'),
    ports,
    apiUrl: `http://127.0.0.1:${ports.api}`,
    idpIssuer: `http://127.0.0.1:${ports.idp}`,
    demo: { database: demoDb, role: demoRole, connection: env.PORTCULLIS_DEMO_CONNECTION?.trim() || 'demo' },
    skipBuild: env.PORTCULLIS_SKIP_BUILD === '1' || env.PORTCULLIS_SKIP_BUILD === 'true',
    readyTimeoutMs: Number.isFinite(readyTimeoutMs) && readyTimeoutMs > 0 ? readyTimeoutMs : 90_000,
    /** `json` passes the apps' pino lines through untouched; `pretty` (default) shortens them. */
    logFormat: env.PORTCULLIS_LOG_FORMAT === 'json' ? 'json' : 'pretty',
  };
}
