import { decodeBase64UrlStrict } from './base64url.js';
import { createPublicKey, KeyObject, sign, verify, type JsonWebKey, type webcrypto } from 'node:crypto';
import { z } from 'zod';
import { PortcullisError } from './errors.js';
import { TOKEN_ALG } from './tokens.js';

/** A compact JWS that is malformed, unsigned, signed by an untrusted key, or of the wrong `typ`. */
export class SignatureError extends PortcullisError {}

/** A public Ed25519 JWK as the api publishes it (SigningKey.publicJwk): `kty: OKP`, `crv: Ed25519`, `x`, `kid`. */
export const ed25519PublicJwkSchema = z.looseObject({
  kty: z.literal('OKP'),
  crv: z.literal('Ed25519'),
  x: z.string().regex(/^[A-Za-z0-9_-]{43}$/, '32 bytes, base64url'),
  kid: z.string().min(1),
  alg: z.literal(TOKEN_ALG).optional(),
});
export type Ed25519PublicJwk = z.infer<typeof ed25519PublicJwkSchema>;

/**
 * Parses a list of trusted public keys given at deploy time: one JWK, a JSON array of JWKs, or a JWK
 * set `{"keys": [...]}`. More than one key is how a rotation is rolled out (trust old and new, then drop
 * the old). Throws SignatureError naming what is wrong.
 */
export function parseTrustedKeys(text: string): Ed25519PublicJwk[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SignatureError('not JSON: expected a public JWK, an array of them, or {"keys": [...]}');
  }
  const list = Array.isArray(value) ? value : value && typeof value === 'object' && Array.isArray((value as { keys?: unknown }).keys) ? (value as { keys: unknown[] }).keys : [value];
  if (list.length === 0) throw new SignatureError('no keys');
  return list.map((k, i) => {
    const r = ed25519PublicJwkSchema.safeParse(k);
    if (!r.success) throw new SignatureError(`key ${i}: not a public Ed25519 JWK with a kid (${r.error.issues.map((x) => `${x.path.join('.') || '(key)'}: ${x.message}`).join('; ')})`);
    if ('d' in (k as object)) throw new SignatureError(`key ${i} (${r.data.kid}) is a private key: give gateways the public half only`);
    return r.data;
  });
}

/** The signing half: the api's active key (SigningKeysService.activeKey, loadActiveSigningKey in libs/db). */
export interface JwsSigningKey {
  kid: string;
  /** a node KeyObject or a WebCrypto CryptoKey (what jose's importJWK returns) */
  privateKey: KeyObject | webcrypto.CryptoKey;
}

/** Compact JWS (RFC 7515) over `payload`, EdDSA, header `{alg, kid, typ}` (no typ when null): verifiable by jose as well. */
export function signCompactJws(payload: string | Uint8Array, key: JwsSigningKey, typ: string | null): string {
  const header = Buffer.from(JSON.stringify(typ === null ? { alg: TOKEN_ALG, kid: key.kid } : { alg: TOKEN_ALG, kid: key.kid, typ })).toString('base64url');
  const body = Buffer.from(payload).toString('base64url');
  const privateKey = key.privateKey instanceof KeyObject ? key.privateKey : KeyObject.from(key.privateKey);
  const signature = sign(null, Buffer.from(`${header}.${body}`), privateKey);
  return `${header}.${body}.${signature.toString('base64url')}`;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

/** Imported public keys by kid (with the JWK text they came from), kept by a long-lived verifier. */
export type JwsKeyCache = Map<string, { jwk: string; key: KeyObject }>;

/**
 * Verifies a compact EdDSA JWS against `keys` (chosen by the header's kid) and requires header `typ`
 * (null: no typ, as on approval decisions; so neither a token nor a snapshot passes for one).
 * Returns the payload bytes. Imported keys are cached per kid and JWK text by `cache`, so a verifier
 * that reads a changing key list (rotation) stays cheap and never uses a stale key.
 */
export function verifyCompactJws(jws: string, keys: readonly object[], typ: string | null, cache: JwsKeyCache = new Map()): Buffer {
  const parts = jws.split('.');
  if (parts.length !== 3 || !parts.every((p) => B64URL.test(p))) throw new SignatureError('not a compact JWS');
  // one spelling per JWS: other trailing bits of the same bytes (`…AB` for `…AA`) are refused, so a
  // token, snapshot or decision is never accepted under a second text (ids, caches, replay checks)
  let decoded: Buffer[];
  try {
    decoded = parts.map((p) => decodeBase64UrlStrict(p));
  } catch (err) {
    throw new SignatureError(`not a compact JWS: ${(err as Error).message}`);
  }
  let header: { alg?: unknown; kid?: unknown; typ?: unknown; crit?: unknown };
  try {
    header = JSON.parse(decoded[0]!.toString('utf8')) as typeof header;
  } catch {
    throw new SignatureError('JWS header is not JSON');
  }
  if (header.alg !== TOKEN_ALG) throw new SignatureError(`unexpected alg ${String(header.alg)}`);
  if (header.crit !== undefined) throw new SignatureError('JWS header has crit parameters');
  if ((header.typ ?? null) !== typ) throw new SignatureError(`JWS typ is ${String(header.typ)}, not ${typ}`);
  const kid = typeof header.kid === 'string' ? header.kid : null;
  const jwk = kid === null ? undefined : keys.find((k) => (k as { kid?: unknown }).kid === kid);
  if (!kid || !jwk) throw new SignatureError(`signed by a key that is not trusted (kid ${kid ?? '(none)'})`);
  const text = JSON.stringify(jwk);
  let key = cache.get(kid)?.jwk === text ? cache.get(kid)!.key : null;
  if (!key) {
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    } catch (err) {
      throw new SignatureError(`trusted key ${kid} cannot be imported`, { cause: err });
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new SignatureError(`trusted key ${kid} is not Ed25519`);
    cache.set(kid, { jwk: text, key });
  }
  const signature = decoded[2]!;
  if (signature.length !== 64 || !verify(null, Buffer.from(`${parts[0]}.${parts[1]}`), key, signature)) {
    throw new SignatureError(`signature does not verify with key ${kid}`);
  }
  return decoded[1]!;
}
