// Shared pieces of the benchmarks: a private Postgres cluster, free ports, a gateway process fed
// with a config snapshot over NATS KV, and gateway credentials signed with a throwaway key.
// Everything runs on loopback and is removed on exit.
import { spawn, execFileSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, chmodSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { jetstreamManager } from '@nats-io/jetstream';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PGBIN = '/usr/lib/postgresql/15/bin';

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitTcp(port, timeoutMs = 20_000) {
  const { connect: tcp } = await import('node:net');
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((r) => {
      const s = tcp(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

const asPostgres = (cmd, args, opts = {}) =>
  process.getuid?.() === 0 ? execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], opts) : execFileSync(cmd, args, opts);

/**
 * A self-signed certificate and key (openssl, in a temp dir owned by the postgres user, mode 0600 as
 * Postgres requires of a key), for the TLS scenarios of Postgres, pgbouncer and the gateway alike.
 */
export function makeTlsCert() {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-tls-'));
  const cert = join(dir, 'server.crt');
  const key = join(dir, 'server.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '2', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  chmodSync(key, 0o600);
  chmodSync(dir, 0o755);
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', 'postgres', dir]);
  return { cert, key, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** initdb + postgres on a free port, trust auth, tuned for many connections; TLS too when `tls` is given. */
export async function startCluster({ maxConnections = 1200, tls = null } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-pg-'));
  chmodSync(dir, 0o777);
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) execFileSync('chown', ['postgres', dir]);
  asPostgres(`${PGBIN}/initdb`, ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync'], { stdio: 'ignore' });
  const port = await freePort();
  const conf = [
    `port = ${port}`, `listen_addresses = '127.0.0.1'`, `unix_socket_directories = '${dir}'`,
    `max_connections = ${maxConnections}`, 'shared_buffers = 256MB', 'fsync = off', 'synchronous_commit = off', 'full_page_writes = off',
    ...(tls ? ['ssl = on', `ssl_cert_file = '${tls.cert}'`, `ssl_key_file = '${tls.key}'`] : []),
  ].join('\n');
  writeFileSync(join(data, 'postgresql.auto.conf'), conf + '\n');
  asPostgres(`${PGBIN}/pg_ctl`, ['-D', data, '-l', join(dir, 'log'), '-w', 'start'], { stdio: 'ignore' });
  return {
    port,
    url: (db = 'postgres') => `postgresql://postgres@127.0.0.1:${port}/${db}`,
    stop() {
      try { asPostgres(`${PGBIN}/pg_ctl`, ['-D', data, '-m', 'immediate', 'stop'], { stdio: 'ignore' }); } catch { /* already down */ }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** pgbouncer (Debian package) in session mode in front of `pgPort`. */
export async function startPgbouncer(pgPort, { poolSize = 64, tls = null } = {}) {
  try { execFileSync('which', ['pgbouncer'], { stdio: 'ignore' }); } catch {
    throw new Error('pgbouncer is not installed: apt-get update && apt-get install -y pgbouncer');
  }
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-pgb-'));
  chmodSync(dir, 0o777);
  const port = await freePort();
  // Session pooling: pgbouncer 1.18 cannot keep prepared statements in transaction mode, and the
  // gateway is session-scoped too, so this compares like with like.
  writeFileSync(join(dir, 'pgbouncer.ini'), [
    '[databases]', `* = host=127.0.0.1 port=${pgPort}`, '[pgbouncer]', `listen_addr = 127.0.0.1`, `listen_port = ${port}`,
    'auth_type = trust', `auth_file = ${join(dir, 'users.txt')}`, 'pool_mode = session', `default_pool_size = ${poolSize}`,
    'max_client_conn = 2000', `unix_socket_dir = ${dir}`, `logfile = ${join(dir, 'log')}`, `pidfile = ${join(dir, 'pid')}`,
    // clients may ask for TLS (the TLS scenario); pgbouncer → Postgres stays plaintext, as the gateway's upstream does
    ...(tls ? ['client_tls_sslmode = allow', `client_tls_cert_file = ${tls.cert}`, `client_tls_key_file = ${tls.key}`] : []),
  ].join('\n') + '\n');
  writeFileSync(join(dir, 'users.txt'), '"postgres" ""\n');
  const args = [join(dir, 'pgbouncer.ini')];
  const child = process.getuid?.() === 0 ? spawn('runuser', ['-u', 'postgres', '--', 'pgbouncer', ...args], { stdio: 'ignore' }) : spawn('pgbouncer', args, { stdio: 'ignore' });
  await waitTcp(port);
  return { port, stop() { child.kill('SIGTERM'); rmSync(dir, { recursive: true, force: true }); } };
}

function b64url(buf) { return Buffer.from(buf).toString('base64url'); }

/** Ed25519 signing key + JWT signer (EdDSA), no dependencies. */
export function makeSigner() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const kid = `bench-${randomBytes(4).toString('hex')}`;
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'EdDSA', use: 'sig' };
  return {
    jwk,
    kid,
    privateKey,
    sign(claims) {
      const header = b64url(JSON.stringify({ alg: 'EdDSA', kid, typ: 'JWT' }));
      const body = b64url(JSON.stringify(claims));
      return `${header}.${body}.${b64url(sign(null, Buffer.from(`${header}.${body}`), createPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' }))))}`;
    },
  };
}

/**
 * How the gateway is run in the benchmarks: the deployment setting docs/performance.md recommends.
 * V8 lets the young generation grow to 2 × 16 MiB under a steady allocation rate (every statement
 * allocates a little); capping it at 2 MiB keeps ~25 MiB of RSS off an idle-heavy gateway for a few
 * more (cheap) scavenges.
 */
export const GATEWAY_NODE_ARGS = ['--max-semi-space-size=2'];

/**
 * A gateway child process (apps/gateway/dist/main.js) with its own NATS prefix and pool,
 * configured through a KV snapshot that points connection `bench` at `target`.
 */
export async function startGateway({ target, policy = null, recording = 'required', nodeArgs = [], env = {}, entry = join(ROOT, 'apps/gateway/dist/main.js'), natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222', eventKeyHex = randomBytes(32).toString('hex'), root = ROOT, ssh = null }) {
  // `ssh`: {connections: [extra ssh connections, secret in the clear as `secretText`], hostKey: OpenSSH private key text, userCaPublicKey} — the pool's SSH side
  // `root`: the checkout `entry` belongs to (its config snapshot format; builds before signed snapshots take plain JSON)
  const protocol = await import(join(root, 'libs/protocol/dist/index.js'));
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  const pool = 'bench';
  const names = protocol.natsNames(prefix);
  const poolKeys = protocol.generatePoolKeyPair();
  const signer = makeSigner();
  const nc = await connect({ servers: natsUrl });
  const kv = await new Kvm(nc).create(names.configBucket, { history: 1 });
  const snapshot = protocol.configSnapshotSchema.parse({
    revision: 1, pool, generatedAt: new Date().toISOString(), issuer: 'portcullis', verificationKeys: [signer.jwk], revokedTokenIds: [],
    eventKey: protocol.sealForPool(poolKeys.publicKey, eventKeyHex, 'event-key'),
    maskingKey: protocol.sealForPool(poolKeys.publicKey, randomBytes(32).toString('hex'), 'masking-key'),
    connections: [{
      name: 'bench', kind: 'postgres', host: '127.0.0.1', port: target.port, database: target.database, username: 'postgres', secret: null,
      tls: 'disable', allowedGroups: ['engineers'], policy: policy ? policy.name : null, recording, approvalMode: 'wait',
    }, ...(ssh?.connections ?? []).map(({ secretText, ...c }) => ({ ...c, secret: protocol.sealForPool(poolKeys.publicKey, secretText, `connection:${c.name}`) }))],
    policies: policy ? [{ name: policy.name, version: 1, document: policy }] : [],
    ...(ssh ? { ssh: { hostKey: protocol.sealForPool(poolKeys.publicKey, ssh.hostKey, 'ssh-host-key'), userCaPublicKey: ssh.userCaPublicKey } } : {}),
  });
  await kv.put(names.configKey(pool), protocol.signConfigSnapshot ? protocol.signConfigSnapshot(snapshot, { kid: signer.kid, privateKey: signer.privateKey }) : JSON.stringify(snapshot));
  const pgPort = await freePort();
  const httpPort = await freePort();
  const sshPort = await freePort();
  const gatewayId = `bench-${process.pid}-${prefix}`;
  const child = spawn(process.execPath, [...GATEWAY_NODE_ARGS, ...nodeArgs, entry], {
    env: {
      ...process.env, NATS_URL: natsUrl, NATS_PREFIX: prefix, GATEWAY_POOL: pool, GATEWAY_ID: gatewayId,
      GATEWAY_POOL_KEY: poolKeys.privateKey, GATEWAY_CONFIG_PUBLIC_KEY: JSON.stringify(signer.jwk), GATEWAY_PG_PORT: String(pgPort), GATEWAY_PG_HOST: '127.0.0.1',
      GATEWAY_HTTP_PORT: String(httpPort), GATEWAY_HTTP_HOST: '127.0.0.1', GATEWAY_SSH_PORT: String(sshPort), GATEWAY_SSH_HOST: '127.0.0.1', GATEWAY_KUBERNETES_PORT: '0', GATEWAY_KUBERNETES_HOST: '127.0.0.1', GATEWAY_ALLOW_PLAINTEXT: 'true', LOG_LEVEL: 'warn', ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const end = Date.now() + 60_000;
  for (;;) {
    const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`).then((r) => r.ok, () => false);
    if (ready) break;
    if (Date.now() > end || child.exitCode !== null) throw new Error('gateway did not become ready');
    await sleep(100);
  }
  const credential = (ttlSeconds = 3600, cn = 'bench') => {
    const now = Math.floor(Date.now() / 1000);
    return signer.sign({
      iss: 'portcullis', aud: protocol.GATEWAY_AUDIENCE, sub: 'bench', jti: randomUUID(), iat: now, exp: now + ttlSeconds,
      typ: 'gateway', pid: randomUUID(), kind: 'agent', groups: ['engineers'], cn,
    });
  };
  return {
    port: pgPort,
    sshPort,
    pid: child.pid,
    /** the NATS prefix of its event stream (recorders attach to it) */
    prefix,
    gatewayId,
    /** a counter of the gateway's /metrics (0 when absent) */
    async metric(name) {
      const text = await fetch(`http://127.0.0.1:${httpPort}/metrics`).then((r) => r.text());
      const m = new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) : 0;
    },
    credential,
    rssKiB() {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return m ? Number(m[1]) : NaN;
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      const jsm = await jetstreamManager(nc);
      for (const s of [names.eventStream, `KV_${names.configBucket}`]) await jsm.streams.delete(s).catch(() => undefined);
      await nc.close();
    },
  };
}

/**
 * A recorder child process (apps/recorder/dist/main.js, or another checkout's) on a gateway's NATS
 * prefix, writing to `databaseUrl` (migrated by the caller). The gateway's event key must be
 * deriveKey(masterKey, 'event-signing'): see recorderKeys().
 */
export async function startRecorder({ prefix, databaseUrl, masterKeyHex, shard = '0/1', entry = join(ROOT, 'apps/recorder/dist/main.js'), env = {}, natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222', nodeArgs = [] }) {
  const httpPort = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, entry], {
    env: {
      ...process.env, DATABASE_URL: databaseUrl, NATS_URL: natsUrl, NATS_PREFIX: prefix, PORTCULLIS_MASTER_KEY: masterKeyHex,
      RECORDER_HTTP_PORT: String(httpPort), RECORDER_HTTP_HOST: '127.0.0.1', RECORDER_SHARD: shard, CHECKPOINT_SECONDS: '3600', LOG_LEVEL: 'warn', ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const end = Date.now() + 60_000;
  for (;;) {
    const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`).then((r) => r.ok, () => false);
    if (ready) break;
    if (Date.now() > end || child.exitCode !== null) throw new Error('recorder did not become ready');
    await sleep(100);
  }
  return {
    pid: child.pid,
    /** its /metrics as name{labels} → value */
    async metrics() {
      const text = await fetch(`http://127.0.0.1:${httpPort}/metrics`).then((r) => r.text());
      const out = new Map();
      for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const i = line.lastIndexOf(' ');
        out.set(line.slice(0, i), Number(line.slice(i + 1)));
      }
      return out;
    },
    async stop() {
      child.kill('SIGTERM');
      const exited = new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
      // a graceful stop commits the batch in hand; past 10 s it is killed
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
    /** SIGKILL: nothing in flight is committed or acknowledged */
    async kill() {
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
    },
  };
}

/** A master key for recorders and the event key a gateway must then sign with. */
export async function recorderKeys() {
  const protocol = await import(join(ROOT, 'libs/protocol/dist/index.js'));
  const master = randomBytes(32);
  return { masterKeyHex: master.toString('hex'), eventKeyHex: protocol.deriveKey(master, 'event-signing').toString('hex') };
}

/** A migrated Portcullis database for recorders on a bench cluster. */
export async function recorderDatabase(url, root = ROOT) {
  const db = await import(join(root, 'libs/db/dist/index.js'));
  await db.ensureDatabase(url);
  await db.migrate(url, join(root, 'prisma/migrations'));
  return url;
}

/**
 * Lag quantiles from the difference of two scrapes of recorder_lag_seconds (Prometheus buckets):
 * linear inside the bucket that holds the quantile; `over1s` is the share of events that waited
 * longer than a second.
 */
export function lagSummary(before, after, name = 'recorder_lag_seconds') {
  const buckets = [];
  for (const [k, v] of after) {
    const m = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\}$`).exec(k);
    if (m) buckets.push({ le: m[1] === '+Inf' ? Infinity : Number(m[1]), n: v - (before.get(k) ?? 0) });
  }
  buckets.sort((a, b) => a.le - b.le);
  const count = (after.get(`${name}_count`) ?? 0) - (before.get(`${name}_count`) ?? 0);
  const sum = (after.get(`${name}_sum`) ?? 0) - (before.get(`${name}_sum`) ?? 0);
  const q = (p) => {
    const want = p * count;
    let lo = 0;
    let prev = 0;
    for (const b of buckets) {
      if (b.n >= want) return b.le === Infinity ? lo : lo + ((b.le - lo) * (want - prev)) / Math.max(1, b.n - prev);
      lo = b.le;
      prev = b.n;
    }
    return NaN;
  };
  const atOne = buckets.find((b) => b.le === 1)?.n ?? count;
  return { events: count, meanS: count ? sum / count : NaN, p50S: q(0.5), p99S: q(0.99), over1s: count ? (count - atOne) / count : NaN };
}
