import { createHash } from 'node:crypto';

/**
 * Canonical JSON: object keys sorted (by UTF-16 code unit), no whitespace, `undefined` members dropped.
 * The hash chain depends on every writer and verifier producing the same bytes.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (value === undefined) return 'null';
    if (typeof value === 'number' && !Number.isFinite(value)) return 'null';
    if (typeof value === 'bigint') return JSON.stringify(value.toString());
    return JSON.stringify(value);
  }
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

const J = JSON.stringify;

/**
 * canonicalJson() for what JSON.parse produces and what the gateway records (null, booleans,
 * numbers, strings, arrays, plain objects), without the intermediate arrays; anything else goes to
 * canonicalJson itself. Keys are sorted only when they are not already in order. canonical.spec.ts
 * holds it equal.
 */
export function canonicalJsonFast(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return J(value);
    case 'number':
      return Number.isFinite(value) ? J(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    default:
      return canonicalJson(value);
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      out += (i ? ',' : '') + (v === undefined ? 'null' : canonicalJsonFast(v));
    }
    return `${out}]`;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return canonicalJson(value);
  const obj = value as Record<string, unknown>;
  let keys = Object.keys(obj);
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1] > keys[i]) {
      keys = keys.sort();
      break;
    }
  }
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined) continue;
    out += `${first ? '' : ','}${J(k)}:${canonicalJsonFast(v)}`;
    first = false;
  }
  return `${out}}`;
}

/** The first prevHash of every chain. */
export const GENESIS_HASH = '0'.repeat(64);

/** hash = sha256(prevHash + canonical JSON of the event without `hash`), lowercase hex. */
export function chainHash(prevHash: string, eventWithoutHash: Record<string, unknown>): string {
  const { hash: _omit, ...rest } = eventWithoutHash;
  return createHash('sha256').update(prevHash).update(canonicalJson(rest)).digest('hex');
}
