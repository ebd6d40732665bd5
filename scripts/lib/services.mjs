// Are Postgres, Redis and NATS there? A TCP connect plus one protocol exchange each, so a port held by
// something else does not pass for the service. Each failure becomes one line that says how to start it.
import { connect } from 'node:net';
import pg from 'pg';

const COMPOSE = 'docker compose -f infra/docker-compose.yml up -d';

/** Sends `request` (if any) and resolves with the first bytes up to `until` matching, or rejects. */
function exchange(host, port, request, until, timeoutMs) {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let buf = '';
    const done = (err, value) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => done(Object.assign(new Error('no answer'), { code: 'ETIMEDOUT' })), timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => { if (request) socket.write(request); });
    socket.on('data', (chunk) => {
      buf += chunk;
      if (until.test(buf) || buf.length > 64 * 1024) done(null, buf);
    });
    socket.once('error', (err) => done(err));
    socket.once('close', () => done(Object.assign(new Error('connection closed'), { code: 'ECLOSED' })));
  });
}

function hostPort(u, defaultPort) {
  return { host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(u.port || defaultPort) };
}

function reason(err) {
  if (err?.code === 'ECONNREFUSED') return 'connection refused';
  if (err?.code === 'ETIMEDOUT') return 'no answer';
  if (err?.code === 'ENOTFOUND') return 'unknown host';
  return (err?.message ?? String(err)).split('\n')[0];
}

export async function checkPostgres(databaseUrl, timeoutMs = 3000) {
  // Ask the maintenance database: the app database may not exist yet (we create it).
  const u = new URL(databaseUrl);
  u.pathname = '/postgres';
  const client = new pg.Client({ connectionString: u.href, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const r = await client.query('SELECT current_setting(\'server_version\') AS v');
    return { ok: true, detail: `Postgres ${r.rows[0].v}` };
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function checkRedis(redisUrl, timeoutMs = 3000) {
  const u = new URL(redisUrl);
  const { host, port } = hostPort(u, 6379);
  let request = 'PING\r\n';
  if (u.password) {
    const user = decodeURIComponent(u.username || 'default');
    request = `AUTH ${user} ${decodeURIComponent(u.password)}\r\nPING\r\n`;
  }
  const reply = await exchange(host, port, request, /(\+PONG|-[^\r]*)\r\n/, timeoutMs);
  const err = /-([^\r]*)\r\n/.exec(reply);
  if (err) throw new Error(`Redis said: ${err[1]}`);
  return { ok: true, detail: 'Redis PONG' };
}

export async function checkNats(natsUrl, timeoutMs = 3000) {
  const url = new URL(natsUrl);
  const { host, port } = hostPort(url, 4222);
  // A NATS server greets every client with `INFO {json}\r\n` before anything else.
  const greeting = await exchange(host, port, null, /\r\n/, timeoutMs);
  const m = /^INFO\s+(\{.*\})\s*\r\n/.exec(greeting);
  if (!m) throw new Error('this port does not speak NATS');
  const info = JSON.parse(m[1]);
  if (!info.jetstream) {
    const err = new Error(`NATS ${info.version ?? ''} runs without JetStream (start it with -js)`);
    err.code = 'NO_JETSTREAM';
    throw err;
  }
  if (info.auth_required && !url.username) {
    // infra/docker-compose.yml runs NATS with one user per app (infra/nats/auth.conf)
    const err = new Error(`NATS at ${host}:${port} requires a user, and NATS_URL has none: set NATS_URL=nats://api:<NATS_API_PASSWORD from infra/.env>@${host}:${port}`);
    err.code = 'NATS_AUTH';
    throw err;
  }
  return { ok: true, detail: `NATS ${info.version} with JetStream` };
}

/** Runs the three checks; returns `{ok, lines}` where each failed service has exactly one line. */
export async function checkServices(cfg, timeoutMs = 3000) {
  const pgAt = hostPort(cfg.database, 5432);
  const redisAt = hostPort(cfg.redis, 6379);
  const natsAt = hostPort(cfg.nats, 4222);
  const checks = [
    {
      name: 'Postgres', at: `${pgAt.host}:${pgAt.port}`, env: 'DATABASE_URL', service: 'postgres',
      run: () => checkPostgres(cfg.databaseUrl, timeoutMs),
    },
    {
      name: 'Redis', at: `${redisAt.host}:${redisAt.port}`, env: 'REDIS_URL', service: 'redis',
      run: () => checkRedis(cfg.redisUrl, timeoutMs),
    },
    {
      name: 'NATS', at: `${natsAt.host}:${natsAt.port}`, env: 'NATS_URL', service: 'nats',
      run: () => checkNats(cfg.natsUrl, timeoutMs),
    },
  ];
  const results = await Promise.all(checks.map(async (c) => {
    try {
      const r = await c.run();
      return { name: c.name, ok: true, line: `${c.name} at ${c.at}: ${r.detail}` };
    } catch (err) {
      if (err?.code === 'NATS_AUTH') return { name: c.name, ok: false, line: err.message };
      const how = err?.code === 'NO_JETSTREAM'
        ? `restart nats-server with -js (JetStream), or run \`${COMPOSE} ${c.service}\``
        : `start it with \`${COMPOSE} ${c.service}\` (or your own server) or point ${c.env} at one`;
      return { name: c.name, ok: false, line: `${c.name} is not answering at ${c.at} (${reason(err)}): ${how}` };
    }
  }));
  return { ok: results.every((r) => r.ok), results };
}
