import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';
import { DEFAULT_EVENT_FLUSH_MS, EVENT_FLUSH_MS_MAX, EVENT_FLUSH_MS_MIN } from './events/event-publisher.js';
import {
  DEFAULT_NATS_PREFIX, loadEnvOrExit, logLevelSchema, parseEnvOrThrow, parseTrustedKeys, portSchema, tokenNameSchema, type Ed25519PublicJwk,
} from '@portcullis/protocol';
import type { ProtocolName } from './core/session-core.types.js';

const PROTOCOLS = ['postgres', 'ssh', 'kubernetes'] as const satisfies readonly ProtocolName[];

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .default('false')
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

export const gatewayEnvSchema = z.object({
  NATS_URL: z.string().min(1).default('nats://127.0.0.1:4222'),
  NATS_PREFIX: tokenNameSchema.default(DEFAULT_NATS_PREFIX),
  GATEWAY_POOL: tokenNameSchema.default('default'),
  GATEWAY_ID: tokenNameSchema.default(`${hostname().replace(/[^A-Za-z0-9_-]/g, '-')}-${process.pid}`),
  /** X25519 private key, PKCS#8 DER base64url: opens the secrets sealed for this pool */
  GATEWAY_POOL_KEY: z.string().regex(/^[A-Za-z0-9_-]{40,}$/, 'an X25519 PKCS#8 key, base64url'),
  /**
   * Public keys that verify config snapshots (GET /v1/gateway-config-keys): one Ed25519 JWK, an array, or
   * a JWK set. Several keys during a rotation. Snapshots signed by anything else are refused.
   */
  GATEWAY_CONFIG_PUBLIC_KEY: z.string().optional(),
  /** The same, read from a file (e.g. a mounted Secret); exactly one of the two */
  GATEWAY_CONFIG_PUBLIC_KEY_FILE: z.string().optional(),
  /**
   * The protocols this gateway serves, comma-separated (postgres, ssh, kubernetes); default every
   * protocol module of this build (gateway.ts PROTOCOL_MODULES)
   */
  GATEWAY_PROTOCOLS: z
    .string()
    .default('postgres,ssh,kubernetes')
    .transform((v, ctx) => {
      const names = [...new Set(v.split(',').map((s) => s.trim()).filter(Boolean))];
      for (const n of names) if (!(PROTOCOLS as readonly string[]).includes(n)) ctx.addIssue({ code: 'custom', message: `unknown protocol "${n}" (one of ${PROTOCOLS.join(', ')})` });
      return names as ProtocolName[];
    }),
  GATEWAY_PG_PORT: portSchema.default(15432),
  GATEWAY_PG_HOST: z.string().default('0.0.0.0'),
  /** SSH listener: `ssh -p 2222 <connection>@<gateway>` */
  GATEWAY_SSH_PORT: portSchema.default(2222),
  GATEWAY_SSH_HOST: z.string().default('0.0.0.0'),
  /** how long an SSH client may take from connect to an authenticated session before it is closed */
  GATEWAY_SSH_LOGIN_GRACE_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
  /**
   * channels (sessions, forwards) one SSH client connection may hold open at once; each open past it is
   * refused with a reason. Each channel may hold up to its windows' worth of bytes in the gateway (a few MiB).
   */
  GATEWAY_SSH_MAX_CHANNELS: z.coerce.number().int().min(1).max(1000).default(32),
  /** failed SSH logins per client address and minute; past it the address waits out the minute */
  GATEWAY_SSH_MAX_AUTH_FAILURES: z.coerce.number().int().min(1).max(10_000).default(10),
  GATEWAY_KUBERNETES_PORT: portSchema.default(8443),
  GATEWAY_KUBERNETES_HOST: z.string().default('0.0.0.0'),
  /** largest request body the Kubernetes listener takes (kube-apiserver's own limit is 3 MiB) */
  GATEWAY_KUBERNETES_MAX_BODY_BYTES: z.coerce.number().int().min(64 * 1024).max(1024 * 1024 * 1024).default(8 * 1024 * 1024),
  GATEWAY_HTTP_PORT: portSchema.default(8085),
  GATEWAY_HTTP_HOST: z.string().default('0.0.0.0'),
  GATEWAY_TLS_CERT: z.string().optional(),
  GATEWAY_TLS_KEY: z.string().optional(),
  GATEWAY_ALLOW_PLAINTEXT: bool,
  /** Address clients are told to use (heartbeats); optional */
  GATEWAY_PUBLIC_ADDRESS: z.string().optional(),
  /** How long session events may wait in the gateway before they go out as one batch message */
  GATEWAY_EVENT_FLUSH_MS: z.coerce.number().int().min(EVENT_FLUSH_MS_MIN).max(EVENT_FLUSH_MS_MAX).default(DEFAULT_EVENT_FLUSH_MS),
  /**
   * Plaintext sessions whose policy masks nothing are relayed by the native fast lane (Query, Parse
   * and errors still go through the JavaScript relay); `false` relays everything in JavaScript
   */
  GATEWAY_FAST_LANE: z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default('true')
    .transform((v) => v === 'true' || v === '1' || v === 'yes'),
  /**
   * After work, the first quiet interval of this many ms runs one full garbage collection and trims
   * the C heap, returning what the burst left behind (see idle-compaction.ts); 0 turns it off
   */
  GATEWAY_IDLE_COMPACTION_MS: z.coerce.number().int().min(0).max(600_000).default(2000),
  /**
   * End a session when the gateway credential it was opened with expires (57P01). Off by default:
   * a credential's expiry bounds when a session may start, as with Postgres passwords' VALID UNTIL
   */
  GATEWAY_END_SESSIONS_AT_EXPIRY: bool,
  /**
   * Bytes the process may hold for large messages in flight (core/buffer-budget.ts); a session
   * that needs more stops being read until others have delivered theirs
   */
  GATEWAY_BUFFER_BYTES: z.coerce.number().int().min(1024 * 1024).default(256 * 1024 * 1024),
  /** Bytes one session may hold that way; also the most one message may weigh on the JavaScript relay */
  GATEWAY_SESSION_BUFFER_BYTES: z.coerce.number().int().min(1024 * 1024).default(64 * 1024 * 1024),
  /**
   * How long the analysis worker may take over one long shell text (core/command-analysis.ts) before
   * it is refused as command-too-complex (fail closed) and the worker replaced
   */
  GATEWAY_COMMAND_ANALYSIS_TIMEOUT_MS: z.coerce.number().int().min(1).max(600_000).default(5000),
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  LOG_LEVEL: logLevelSchema.default('info'),
}).refine((e) => !!e.GATEWAY_TLS_CERT === !!e.GATEWAY_TLS_KEY, {
  message: 'GATEWAY_TLS_CERT and GATEWAY_TLS_KEY go together',
  path: ['GATEWAY_TLS_KEY'],
}).superRefine((e, ctx) => {
  const keys = readConfigPublicKeys(e);
  if (typeof keys === 'string') ctx.addIssue({ code: 'custom', message: keys, path: [e.GATEWAY_CONFIG_PUBLIC_KEY_FILE ? 'GATEWAY_CONFIG_PUBLIC_KEY_FILE' : 'GATEWAY_CONFIG_PUBLIC_KEY'] });
}).refine((e) => e.GATEWAY_SESSION_BUFFER_BYTES <= e.GATEWAY_BUFFER_BYTES, {
  message: 'GATEWAY_SESSION_BUFFER_BYTES must not exceed GATEWAY_BUFFER_BYTES (a session could never get its share)',
  path: ['GATEWAY_SESSION_BUFFER_BYTES'],
});

/** The trusted snapshot keys of a (validated) env, or the one line that says what is wrong with them. */
export function readConfigPublicKeys(e: { GATEWAY_CONFIG_PUBLIC_KEY?: string; GATEWAY_CONFIG_PUBLIC_KEY_FILE?: string }): Ed25519PublicJwk[] | string {
  const text = e.GATEWAY_CONFIG_PUBLIC_KEY?.trim();
  const file = e.GATEWAY_CONFIG_PUBLIC_KEY_FILE?.trim();
  if (text && file) return 'set GATEWAY_CONFIG_PUBLIC_KEY or GATEWAY_CONFIG_PUBLIC_KEY_FILE, not both';
  if (!text && !file) return 'required: the public key(s) that sign config snapshots (GET /v1/gateway-config-keys); a gateway never runs on unsigned config';
  let source = text!;
  if (file) {
    try {
      source = readFileSync(file, 'utf8');
    } catch (err) {
      return `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    }
  }
  try {
    return parseTrustedKeys(source);
  } catch (err) {
    return (err as Error).message;
  }
}

export type GatewayEnv = z.infer<typeof gatewayEnvSchema>;

export function loadGatewayEnv(env: NodeJS.ProcessEnv = process.env): GatewayEnv {
  return loadEnvOrExit('gateway', gatewayEnvSchema, env);
}

/** For tests and embedding: throws instead of exiting. */
export function parseGatewayEnv(env: Record<string, string | undefined>): GatewayEnv {
  return parseEnvOrThrow('gateway', gatewayEnvSchema, env);
}
