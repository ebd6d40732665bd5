import { z } from 'zod';
import { parseEnv, parseMasterKey, logLevelSchema, portSchema, DEFAULT_NATS_PREFIX } from '@portcullis/protocol';

/** Blank env values count as unset, so `FOO=` falls back to the default. */
const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const opt = <T extends z.ZodType>(schema: T) => z.preprocess(blankToUndefined, schema.optional());
const withDefault = <T extends z.ZodType>(schema: T, d: z.input<T>) => z.preprocess(blankToUndefined, schema.default(d as never));
const seconds = z.coerce.number().int().min(1).max(30 * 24 * 3600);

export const apiEnvSchema = z.object({
  DATABASE_URL: withDefault(z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgresql:// URL'), 'postgresql://postgres@127.0.0.1:5432/portcullis'),
  NATS_URL: withDefault(z.string().regex(/^(nats|tls|wss?):\/\//, 'expected a nats:// URL'), 'nats://127.0.0.1:4222'),
  NATS_PREFIX: withDefault(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected letters, digits, _ or -'), DEFAULT_NATS_PREFIX),
  PORTCULLIS_MASTER_KEY: z.preprocess(
    blankToUndefined,
    z.string({ error: 'required (32 bytes as 64 hex characters or base64)' }).refine((v) => parseMasterKey(v) !== null, 'expected 32 bytes as 64 hex characters or base64'),
  ),
  PORTCULLIS_BOOTSTRAP_TOKEN: opt(z.string().min(16, 'must be at least 16 characters')),
  PORTCULLIS_ISSUER: withDefault(z.string().min(1), 'portcullis'),
  API_PORT: withDefault(portSchema, 8080),
  API_TOKEN_TTL_SECONDS: withDefault(seconds, 3600),
  GATEWAY_TOKEN_TTL_SECONDS: withDefault(seconds, 900),
  GATEWAY_PUBLIC_HOST: withDefault(z.string().min(1), '127.0.0.1'),
  GATEWAY_PUBLIC_PORT: withDefault(portSchema, 15432),
  /** the gateway's SSH listener as clients reach it (credential uri, known_hosts) */
  GATEWAY_SSH_PUBLIC_PORT: withDefault(portSchema, 2222),
  /** the gateway's Kubernetes HTTPS listener as clients reach it (kubeconfig server, credential uri) */
  GATEWAY_KUBERNETES_PUBLIC_PORT: withDefault(portSchema, 8443),
  LOG_LEVEL: withDefault(logLevelSchema, 'info'),
  OIDC_ISSUER_URL: opt(z.url()),
  OIDC_CLIENT_ID: opt(z.string()),
  OIDC_CLIENT_SECRET: opt(z.string()),
  OIDC_REDIRECT_URI: opt(z.url()),
});
export type ApiEnv = z.infer<typeof apiEnvSchema>;

/** The validated env plus values derived from it. Injected everywhere as `ApiConfig`. */
export class ApiConfig {
  readonly masterKey: Buffer;
  constructor(readonly env: ApiEnv) {
    const key = parseMasterKey(env.PORTCULLIS_MASTER_KEY);
    if (!key) throw new Error('PORTCULLIS_MASTER_KEY: invalid'); // unreachable after schema validation
    this.masterKey = key;
  }
}

/** Thrown by createApiApp when the env is invalid; lists every bad key. */
export class InvalidEnvError extends Error {
  constructor(readonly errors: string[]) {
    super(`invalid environment: ${errors.join('; ')}`);
    this.name = 'InvalidEnvError';
  }
}

export function loadApiConfig(env: NodeJS.ProcessEnv): ApiConfig {
  const r = parseEnv(apiEnvSchema, env);
  if (!r.ok) throw new InvalidEnvError(r.errors);
  return new ApiConfig(r.env);
}
