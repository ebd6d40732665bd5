import { randomUUID } from 'node:crypto';
import { Kvm, type KV } from '@nats-io/kv';
import { SignJWT, exportJWK } from 'jose';
import { testKeyPair } from '../../../test/support/test-keys.js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_SNAPSHOT_TYP, GATEWAY_AUDIENCE, configSnapshotSchema, generatePoolKeyPair, natsNames, sealForPool, signCompactJws, signConfigSnapshot, type ConfigSnapshot } from '@portcullis/protocol';
import { parseGatewayEnv } from '../src/env.js';
import { startHarness, waitFor, type Harness } from './support/harness.js';

/**
 * Config snapshots come over NATS, which is not trusted with them: a gateway applies only snapshots signed
 * by a key it was deployed with (GATEWAY_CONFIG_PUBLIC_KEY). Real NATS KV, a real gateway, the pg driver.
 */

const blockDrop = { name: 'default', guardrails: [{ name: 'no-drop', action: 'block', match: { statements: ['DROP'] } }], dynamicSql: 'block' };

let h: Harness;
let kv: KV;
let key: string;

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${h.gateway.httpPort}/metrics`)).text();
  const m = new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}
const rejected = () => metric('portcullis_gateway_config_rejected_total{reason="signature"}');

/** Puts `value` at the pool's key and waits until the gateway has refused it. */
async function putRefused(value: string): Promise<void> {
  const before = await rejected();
  await kv.put(key, value);
  await waitFor(async () => (await rejected()) > before, 5000);
}

async function login(token: string): Promise<string> {
  const c = new pg.Client(h.clientConfig(token));
  try {
    await c.connect();
  } catch (err) {
    return `${(err as { code?: string }).code}: ${(err as Error).message}`;
  }
  try {
    return String((await c.query('select 1 as n')).rows[0].n);
  } finally {
    await c.end();
  }
}

/** What a forger with write access to NATS can build: everything public, its own key. */
async function forgery() {
  const { privateKey, publicKey } = testKeyPair('EdDSA');
  // the kid of the real key: a kid alone must never be trusted
  const jwk = { ...(await exportJWK(publicKey)), kid: h.publicJwk.kid, alg: 'EdDSA' };
  const snapshot: ConfigSnapshot = configSnapshotSchema.parse({
    revision: 1000, pool: h.pool, generatedAt: new Date().toISOString(), issuer: h.issuer,
    verificationKeys: [jwk], revokedTokenIds: [],
    eventKey: sealForPool(h.poolKeys.publicKey, 'e'.repeat(64), 'event-key'),
    maskingKey: sealForPool(h.poolKeys.publicKey, 'f'.repeat(64), 'masking-key'),
    connections: h.snapshotInput.connections.map(({ password: _p, ...c }) => ({ ...c, policy: null, secret: null })),
    policies: [],
  });
  const token = await new SignJWT({ typ: 'gateway', pid: randomUUID(), kind: 'person', groups: ['engineers'], cn: h.connectionName })
    .setProtectedHeader({ alg: 'EdDSA', kid: jwk.kid })
    .setIssuedAt().setIssuer(h.issuer).setAudience(GATEWAY_AUDIENCE).setSubject('user:mallory').setJti(randomUUID()).setExpirationTime('10m')
    .sign(privateKey);
  return { snapshot, signed: signConfigSnapshot(snapshot, { kid: jwk.kid, privateKey: privateKey as never }), token };
}

beforeAll(async () => {
  h = await startHarness({ initialSnapshot: false, connection: { policy: 'default' }, policies: [{ name: 'default', version: 1, document: blockDrop }] });
  kv = await new Kvm(h.nc).open(natsNames(h.natsPrefix).configBucket);
  key = natsNames(h.natsPrefix).configKey(h.pool);
});
afterAll(async () => {
  await h?.stop();
});

describe('signed config snapshots', () => {
  it('a gateway with no config refuses a forged snapshot and stays not ready', async () => {
    const f = await forgery();
    await putRefused(f.signed);
    await putRefused(JSON.stringify(f.snapshot)); // unsigned, as snapshots were before
    expect(h.gateway.config.current).toBeNull();
    expect((await fetch(`http://127.0.0.1:${h.gateway.httpPort}/readyz`)).status).toBe(503);
    expect(await login(f.token)).toMatch(/^(57P03|28P01|08006)/);
  });

  it('applies a snapshot the api key signed', async () => {
    await h.putSnapshot();
    expect(h.gateway.config.current?.revision).toBe(1);
    expect((await fetch(`http://127.0.0.1:${h.gateway.httpPort}/readyz`)).status).toBe(200);
    expect(await login(await h.credential())).toBe('1');
  });

  it('keeps the last good snapshot over a forged one: the forger\'s credentials stay refused', async () => {
    const f = await forgery();
    await putRefused(f.signed);
    expect(h.gateway.config.current?.revision).toBe(1);
    expect(await login(f.token)).toMatch(/^28P01: .*invalid gateway credential/);
    expect(await login(await h.credential())).toBe('1');
  });

  it('refuses a signed snapshot with one byte of its policy changed', async () => {
    await h.putSnapshot();
    const entry = await kv.get(key);
    const { jws } = JSON.parse(new TextDecoder().decode(entry!.value)) as { jws: string };
    const [head, body, sig] = jws.split('.') as [string, string, string];
    const json = Buffer.from(body, 'base64url').toString();
    const i = json.indexOf('"DROP"');
    expect(i).toBeGreaterThan(0);
    const tampered = `${json.slice(0, i + 1)}X${json.slice(i + 2)}`; // DROP → XROP: the guardrail no longer matches
    expect(tampered.length).toBe(json.length);
    await putRefused(JSON.stringify({ jws: `${head}.${Buffer.from(tampered).toString('base64url')}.${sig}` }));
    expect(h.gateway.config.current?.revision).toBe(2);
    // the guardrail still holds
    const c = new pg.Client(h.clientConfig(await h.credential()));
    await c.connect();
    await c.query('create table t_sig (x int)');
    await expect(c.query('drop table t_sig')).rejects.toMatchObject({ code: '42501' });
    await c.end();
  });

  it('a replayed older signed snapshot does not roll the config back', async () => {
    const revision = await h.putSnapshot();
    const old = await kv.get(key);
    await h.putSnapshot({ revokedTokenIds: ['some-jti'] });
    const before = await metric('portcullis_gateway_config_rejected_total{reason="older"}');
    await kv.put(key, old!.value);
    await waitFor(async () => (await metric('portcullis_gateway_config_rejected_total{reason="older"}')) > before, 5000);
    expect(h.gateway.config.current?.revision).toBe(revision + 1);
    expect(h.gateway.config.current?.revoked.has('some-jti')).toBe(true);
  });
});

describe('snapshots that are signed, but not as a snapshot for this pool', () => {
  it('alg none, a JWS of the right key with another typ (a credential, an approval decision), a snapshot for another pool: each refused, the config kept', async () => {
    const revision = await h.putSnapshot();
    const { jws } = JSON.parse(new TextDecoder().decode((await kv.get(key))!.value)) as { jws: string };
    const snapshot = JSON.parse(Buffer.from(jws.split('.')[1]!, 'base64url').toString()) as ConfigSnapshot;
    const newer = { ...snapshot, revision: revision + 100, revokedTokenIds: [] as string[], connections: [] };
    const apiKey = { kid: h.publicJwk.kid!, privateKey: h.signingKey as never };
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    // alg none: no signature at all
    await putRefused(JSON.stringify({ jws: `${b64({ alg: 'none', typ: CONFIG_SNAPSHOT_TYP })}.${b64(newer)}.` }));
    // the api's own key, but the typ of a token (JWT) or of an approval decision (none)
    await putRefused(JSON.stringify({ jws: signCompactJws(JSON.stringify(newer), apiKey, 'JWT') }));
    await putRefused(JSON.stringify({ jws: signCompactJws(JSON.stringify(newer), apiKey, null) }));
    // a real gateway credential of the api in the envelope
    await putRefused(JSON.stringify({ jws: await h.credential() }));
    // a validly signed snapshot of another pool
    const invalid = () => metric('portcullis_gateway_config_rejected_total{reason="invalid"}');
    const before = await invalid();
    await kv.put(key, signConfigSnapshot({ ...newer, pool: `${h.pool}-other` }, apiKey));
    await waitFor(async () => (await invalid()) > before, 5000);
    expect(h.gateway.config.current?.revision).toBe(revision);
    expect(h.gateway.config.current?.connections.size).toBeGreaterThan(0);
    expect(await login(await h.credential())).toBe('1');
  });
});

describe('GATEWAY_CONFIG_PUBLIC_KEY', () => {
  const base = { GATEWAY_POOL_KEY: generatePoolKeyPair().privateKey };
  it.each([
    { name: 'missing', env: {}, error: 'GATEWAY_CONFIG_PUBLIC_KEY: required' },
    { name: 'not a key', env: { GATEWAY_CONFIG_PUBLIC_KEY: '{"kty":"RSA"}' }, error: 'GATEWAY_CONFIG_PUBLIC_KEY: key 0: not a public Ed25519 JWK' },
    { name: 'an unreadable file', env: { GATEWAY_CONFIG_PUBLIC_KEY_FILE: '/nonexistent/keys.json' }, error: 'GATEWAY_CONFIG_PUBLIC_KEY_FILE: cannot read /nonexistent/keys.json: ENOENT' },
  ])('refuses to start when it is $name', ({ env, error }) => {
    expect(() => parseGatewayEnv({ ...base, ...env })).toThrow(error);
  });
});
