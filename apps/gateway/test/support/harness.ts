import { randomBytes, randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { jetstreamManager } from '@nats-io/jetstream';
import type { KeyObject } from 'node:crypto';
import { SignJWT, exportJWK, type JWK } from 'jose';
import { testKeyPair } from '../../../../test/support/test-keys.js';
import pg from 'pg';
import {
  EVENT_BATCH_SIG_HEADER, GATEWAY_AUDIENCE, SSH_HOST_KEY_CONTEXT, GATEWAY_TLS_KEY_CONTEXT, configSnapshotSchema, ensureBucket, generatePoolKeyPair, natsNames, sealForPool, signConfigSnapshot, verifyEventBatchBody, verifyEventSignature,
  type WireEvent,
  type ConfigSnapshot, type ConnectionConfig, type PoolKeyPair,
} from '@portcullis/protocol';
import { Gateway, type ApprovalsSettings, type GatewayOptions } from '../../src/gateway.js';
import type { HooksFactory } from '../../src/postgres/postgres-module.js';
import { parseGatewayEnv } from '../../src/env.js';
import { createLogger } from '../../src/logger.js';

export const PG_ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

/** A connection in a snapshot, with its password in the clear (the harness seals it). */
export type HarnessConnection = Omit<ConnectionConfig, 'secret'> & { password?: string | null };

export interface SnapshotInput {
  connections?: HarnessConnection[];
  policies?: ConfigSnapshot['policies'];
  revokedTokenIds?: string[];
  /** access requests revoked before their end (credentials with claim `grant` naming one are over) */
  revokedGrants?: string[];
  issuer?: string;
  /** the pool's SSH host key (OpenSSH private key text; the harness seals it) and user CA */
  ssh?: { hostKey: string; userCaPublicKey: string } | null;
  /** the pool's gateway TLS certificate for the Kubernetes listener (PEM; the harness seals the key) */
  tls?: { caPem: string; certPem: string; keyPem: string } | null;
}

export interface HarnessOptions {
  /** pool name (default: random) */
  pool?: string;
  /** overrides of the default connection (named `target`, pointing at the scratch database) */
  connection?: Partial<HarnessConnection>;
  /** extra connections */
  connections?: HarnessConnection[];
  policies?: ConfigSnapshot['policies'];
  /** put a snapshot before the gateway starts (default true) */
  initialSnapshot?: boolean;
  /** start the gateway (default true) */
  startGateway?: boolean;
  /** extra env for the gateway */
  env?: Record<string, string>;
  hooks?: HooksFactory;
  /** the SSH decisions of each session (see GatewayOptions.sshPolicy) */
  sshPolicy?: GatewayOptions['sshPolicy'];
  /** approvals of held commands for the harness's gateways (default off) */
  approvals?: ApprovalsSettings;
  /** SQL run in the scratch database before the test (tables, data) */
  setupSql?: string;
  /** create the JetStream event stream yourself (e.g. with tiny limits) before the gateway does */
  createStream?: (nc: NatsConnection, streamName: string, subjects: string) => Promise<void>;
  /** a private NATS server for this harness and its gateways (default NATS_URL): a test may stop it */
  natsUrl?: string;
  /** the pool's gateway TLS certificate in the snapshot (Kubernetes listener) */
  tls?: SnapshotInput['tls'];
  /** the snapshot's event key (hex; default random) — an api's deriveKey(master, 'event-signing') to work with it */
  eventKeyHex?: string;
}

export interface Harness {
  natsPrefix: string;
  pool: string;
  poolKeys: PoolKeyPair;
  signingKey: KeyObject;
  publicJwk: JWK;
  issuer: string;
  nc: NatsConnection;
  /** the event key of the snapshot (signs session events) */
  eventKey: Buffer;
  /** scratch database on the local Postgres, the default connection's target */
  dbName: string;
  /** name of the default connection (`target`) */
  connectionName: string;
  gateway: Gateway;
  /** current snapshot input (connections in the clear) */
  snapshotInput: Required<SnapshotInput>;
  /** Puts a snapshot (merged over the current input) with the next revision; resolves when the gateway applied it. */
  putSnapshot(partial?: SnapshotInput): Promise<number>;
  /** Signs a gateway credential for the default connection. */
  credential(overrides?: Record<string, unknown> & { expiresIn?: string | number }): Promise<string>;
  connectionUri(token: string, dbName?: string, opts?: { sslmode?: string; user?: string }): string;
  /** pg client config for the gateway */
  clientConfig(token: string, dbName?: string): pg.ClientConfig;
  /** runs SQL directly on the scratch database (not through the gateway) */
  targetQuery(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
  /** starts another gateway of the same pool */
  startGateway(env?: Record<string, string>): Promise<Gateway>;
  stop(): Promise<void>;
}

/**
 * A private world for one gateway test file: a random NATS prefix and pool, pool keys, a token
 * signing key, a scratch database as the target, a config snapshot made with libs/protocol types,
 * and a gateway started in-process on port 0 with GATEWAY_ALLOW_PLAINTEXT.
 */
export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const suffix = randomBytes(5).toString('hex');
  const natsPrefix = `gwtest${suffix}`;
  const pool = opts.pool ?? `pool${suffix}`;
  const dbName = `gw_test_${suffix}`;
  const poolKeys = generatePoolKeyPair();
  const { privateKey: signingKey, publicKey } = testKeyPair('EdDSA');
  const publicJwk = { ...(await exportJWK(publicKey)), kid: `k-${suffix}`, alg: 'EdDSA', use: 'sig' };
  const issuer = 'portcullis';
  const names = natsNames(natsPrefix);
  // The harness plays the api: this key signs the snapshots. Fixed here, as a deployment pins it: a test
  // may swap the snapshot's token keys (publicJwk) for another's without touching what gateways trust.
  const configSigner = { kid: publicJwk.kid, privateKey: signingKey };
  const configPublicKey = JSON.stringify(publicJwk);

  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const targetUrl = PG_ADMIN_URL.replace(/\/[^/?]*(\?|$)/, `/${dbName}$1`);
  const target = new pg.Pool({ connectionString: targetUrl, max: 2 });
  // Teardown drops the database WITH (FORCE): a client still closing then gets 57P01 after the pool
  // has let go of it, and an 'error' with no listener would fail the whole run. Both listen: the pool
  // too, because pool.end() resolves once its idle clients are removed from it, not once their
  // connections have closed, and an idle client's error is re-emitted on the pool (a CI run under load
  // failed on that, all tests passing).
  target.on('connect', (c) => c.on('error', () => undefined));
  target.on('error', () => undefined);
  if (opts.setupSql) await target.query(opts.setupSql);

  const natsUrl = opts.natsUrl ?? NATS_URL;
  // reconnects forever: a test that stops its private NATS server restarts it later
  const nc = await connect({ servers: natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const kv = await ensureBucket(new Kvm(nc), names.configBucket);
  if (opts.createStream) await opts.createStream(nc, names.eventStream, names.eventsAll);

  const connectionName = 'target';
  const defaultConnection: HarnessConnection = {
    name: connectionName,
    kind: 'postgres',
    host: '127.0.0.1',
    port: 5432,
    database: dbName,
    username: 'postgres',
    password: null,
    tls: 'disable',
    allowedGroups: ['engineers'],
    policy: null,
    recording: 'required',
    approvalMode: 'wait',
    ...opts.connection,
  };
  const snapshotInput: Required<SnapshotInput> = {
    connections: [defaultConnection, ...(opts.connections ?? [])],
    policies: opts.policies ?? [],
    revokedTokenIds: [],
    revokedGrants: [],
    issuer,
    ssh: null,
    tls: opts.tls ?? null,
  };
  let revision = 0;
  const eventKeyHex = opts.eventKeyHex ?? randomBytes(32).toString('hex');
  const maskingKeyHex = randomBytes(32).toString('hex');

  const buildSnapshot = (): ConfigSnapshot =>
    configSnapshotSchema.parse({
      revision,
      pool,
      generatedAt: new Date().toISOString(),
      issuer: snapshotInput.issuer,
      verificationKeys: [publicJwk],
      revokedTokenIds: snapshotInput.revokedTokenIds,
      revokedGrants: snapshotInput.revokedGrants,
      eventKey: sealForPool(poolKeys.publicKey, eventKeyHex, 'event-key'),
      maskingKey: sealForPool(poolKeys.publicKey, maskingKeyHex, 'masking-key'),
      connections: snapshotInput.connections.map(({ password, ...c }) => ({
        ...c,
        secret: password ? sealForPool(poolKeys.publicKey, password, `connection:${c.name}`) : null,
      })),
      policies: snapshotInput.policies,
      ...(snapshotInput.ssh
        ? { ssh: { hostKey: sealForPool(poolKeys.publicKey, snapshotInput.ssh.hostKey, SSH_HOST_KEY_CONTEXT), userCaPublicKey: snapshotInput.ssh.userCaPublicKey } }
        : {}),
      ...(snapshotInput.tls
        ? { tls: { caPem: snapshotInput.tls.caPem, certPem: snapshotInput.tls.certPem, key: sealForPool(poolKeys.publicKey, snapshotInput.tls.keyPem, GATEWAY_TLS_KEY_CONTEXT) } }
        : {}),
    });

  const gateways: Gateway[] = [];
  const makeGateway = async (extra: Record<string, string> = {}): Promise<Gateway> => {
    const env = parseGatewayEnv({
      NATS_URL: natsUrl,
      NATS_PREFIX: natsPrefix,
      GATEWAY_POOL: pool,
      GATEWAY_ID: `gw-${randomBytes(3).toString('hex')}`,
      GATEWAY_POOL_KEY: poolKeys.privateKey,
      GATEWAY_CONFIG_PUBLIC_KEY: configPublicKey,
      GATEWAY_PG_PORT: '0',
      GATEWAY_PG_HOST: '127.0.0.1',
      GATEWAY_SSH_PORT: '0',
      GATEWAY_SSH_HOST: '127.0.0.1',
      GATEWAY_KUBERNETES_PORT: '0',
      GATEWAY_KUBERNETES_HOST: '127.0.0.1',
      GATEWAY_HTTP_PORT: '0',
      GATEWAY_HTTP_HOST: '127.0.0.1',
      GATEWAY_ALLOW_PLAINTEXT: 'true',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
      ...opts.env,
      ...extra,
    });
    const g = new Gateway({
      env, logger: createLogger(env.LOG_LEVEL), heartbeatMs: 500,
      ...(opts.hooks ? { hooks: opts.hooks } : {}), ...(opts.sshPolicy ? { sshPolicy: opts.sshPolicy } : {}), ...(opts.approvals ? { approvals: opts.approvals } : {}),
    });
    await g.start();
    gateways.push(g);
    if (revision > 0) await waitFor(() => g.config.current?.revision === revision, 5000);
    return g;
  };

  const putSnapshot = async (partial: SnapshotInput = {}): Promise<number> => {
    Object.assign(snapshotInput, Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)));
    revision++;
    await kv.put(names.configKey(pool), signConfigSnapshot(buildSnapshot(), configSigner));
    const want = revision;
    for (const g of gateways) await waitFor(() => g.config.current?.revision === want, 5000);
    return revision;
  };

  if (opts.initialSnapshot !== false) await putSnapshot();
  const gateway = opts.startGateway === false ? (undefined as unknown as Gateway) : await makeGateway();

  const credential = async (overrides: Record<string, unknown> & { expiresIn?: string | number } = {}): Promise<string> => {
    const { expiresIn = '10m', aud = GATEWAY_AUDIENCE, iss = issuer, exp, ...claims } = overrides;
    const jwt = new SignJWT({
      typ: 'gateway',
      pid: randomUUID(),
      kind: 'person',
      groups: ['engineers'],
      cn: connectionName,
      ...claims,
    })
      .setProtectedHeader({ alg: 'EdDSA', kid: publicJwk.kid })
      .setIssuedAt()
      .setIssuer(iss as string)
      .setAudience(aud as string)
      .setSubject((claims.sub as string) ?? 'user:carol')
      .setJti((claims.jti as string) ?? randomUUID());
    if (exp !== undefined) jwt.setExpirationTime(exp as number);
    else jwt.setExpirationTime(expiresIn);
    return jwt.sign(signingKey);
  };

  return {
    natsPrefix,
    eventKey: Buffer.from(eventKeyHex, 'hex'),
    pool,
    poolKeys,
    signingKey,
    publicJwk,
    issuer,
    nc,
    dbName,
    connectionName,
    gateway,
    snapshotInput,
    putSnapshot,
    credential,
    connectionUri: (token, db = connectionName, o = {}) =>
      `postgresql://${encodeURIComponent(o.user ?? 'carol')}:${encodeURIComponent(token)}@127.0.0.1:${gateway.pgPort}/${encodeURIComponent(db)}?sslmode=${o.sslmode ?? 'disable'}`,
    clientConfig: (token, db = connectionName) => ({ host: '127.0.0.1', port: gateway.pgPort, user: 'carol', password: token, database: db, ssl: false }),
    targetQuery: (sql, params) => target.query(sql, params as unknown[]),
    startGateway: makeGateway,
    stop: async () => {
      for (const g of gateways) await g.stop().catch(() => undefined);
      await target.end().catch(() => undefined);
      const a = new pg.Client({ connectionString: PG_ADMIN_URL });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
      await a.end();
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(names.eventStream).catch(() => undefined);
      await jsm.streams.delete(`KV_${names.configBucket}`).catch(() => undefined);
      await nc.close();
    },
  };
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, stepMs = 20): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/**
 * Reads events from the JetStream stream in stream order (optionally one session's), waiting for at
 * least `wantAtLeast`. Batch messages are expanded; every batch and single session event must verify
 * with the snapshot's event key, or this throws.
 */
export async function readSessionEvents(h: Harness, sessionId?: string, wantAtLeast = 1, timeoutMs = 5000): Promise<Record<string, unknown>[]> {
  const names = natsNames(h.natsPrefix);
  const end = Date.now() + timeoutMs;
  // The test's own connection may still be reconnecting (a test restarted its NATS): retry until the deadline.
  const untilDeadline = async <T>(fn: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (Date.now() > end) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const jsm = await untilDeadline(() => jetstreamManager(h.nc));
  let events: Record<string, unknown>[] = [];
  for (;;) {
    const info = await untilDeadline(() => jsm.streams.info(names.eventStream));
    events = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(names.eventStream, { seq }).catch(() => null);
      if (!m) continue;
      const batchSig = m.header?.has(EVENT_BATCH_SIG_HEADER) ? m.header.get(EVENT_BATCH_SIG_HEADER) : undefined;
      let batch: Record<string, unknown>[];
      if (batchSig !== undefined) {
        if (!verifyEventBatchBody(m.data, batchSig, h.eventKey)) throw new Error(`stream message ${seq}: bad batch signature`);
        batch = m.json<Record<string, unknown>[]>();
      } else {
        const single = m.json<Record<string, unknown>>();
        // control-plane events (sessionId null) are the api's and approvals', signed with their key
        if (single.sessionId !== null && !verifyEventSignature(single as unknown as WireEvent, h.eventKey)) throw new Error(`stream message ${seq}: bad event signature`);
        batch = [single];
      }
      for (const e of batch) if (!sessionId || e.sessionId === sessionId) events.push(e);
    }
    if (events.length >= wantAtLeast || Date.now() > end) return events;
    await new Promise((r) => setTimeout(r, 100));
  }
}
