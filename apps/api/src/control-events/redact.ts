/** Keys whose values are secrets or credentials: never in an audit event or a log line. */
const SECRET_KEY = /^(password|secret|secrets|secretciphertext|token|access_token|refresh_token|id_token|subject_token|client_secret|privatejwk|privatejwkencrypted|privatekey|authorization|masterkey)$/i;

/** Deep copy of `value` without secret-named members (hasSecret-style flags stay). */
export function stripSecrets(value: unknown, depth = 0): unknown {
  if (depth > 20) return '[truncated]';
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => stripSecrets(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (SECRET_KEY.test(k) || v === undefined) continue;
    out[k] = stripSecrets(v, depth + 1);
  }
  return out;
}
