import type { z } from 'zod';
import { EnvError, SchemaError } from './errors.js';

/** Lists a zod error's issues as `path: message` lines. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
}

/** Parses `value` with `schema` or throws a SchemaError naming every bad field. */
export function parseWith<T extends z.ZodType>(schema: T, what: string, value: unknown): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw new SchemaError(what, formatIssues(r.error));
  return r.data;
}

/**
 * Validates process env at boot. Returns the parsed env or, when any key is bad, every bad key
 * as one line each (the caller prints them and exits 1).
 */
export function parseEnv<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv = process.env): { ok: true; env: z.infer<T> } | { ok: false; errors: string[] } {
  const r = schema.safeParse(env);
  if (r.success) return { ok: true, env: r.data };
  return { ok: false, errors: r.error.issues.map((i) => `${i.path.join('.') || 'env'}: ${i.message}`) };
}

/** parseEnv, then on failure print each bad key to stderr and exit 1. */
export function loadEnvOrExit<T extends z.ZodType>(app: string, schema: T, env: NodeJS.ProcessEnv = process.env): z.infer<T> {
  const r = parseEnv(schema, env);
  if (r.ok) return r.env;
  process.stderr.write(`${app}: invalid environment: ${r.errors.join('; ')}\n`);
  process.exit(1);
}

/** parseEnv for tests and embedding: throws an EnvError naming every bad key instead of exiting. */
export function parseEnvOrThrow<T extends z.ZodType>(app: string, schema: T, env: Record<string, string | undefined>): z.infer<T> {
  const r = parseEnv(schema, env as NodeJS.ProcessEnv);
  if (!r.ok) throw new EnvError(app, r.errors);
  return r.env;
}
