import { hostname } from 'node:os';
import { z } from 'zod';
import { DEFAULT_NATS_PREFIX, loadEnvOrExit, parseEnv } from '@portcullis/protocol';
const bool = z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default('false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');
const port = z.coerce.number().int().min(0).max(65535);
export const gatewayEnvSchema = z.object({
    NATS_URL: z.string().min(1).default('nats://127.0.0.1:4222'),
    NATS_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only').default(DEFAULT_NATS_PREFIX),
    GATEWAY_POOL: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only').default('default'),
    GATEWAY_ID: z
        .string()
        .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only')
        .default(`${hostname().replace(/[^A-Za-z0-9_-]/g, '-')}-${process.pid}`),
    /** X25519 private key, PKCS#8 DER base64url: opens the secrets sealed for this pool */
    GATEWAY_POOL_KEY: z.string().regex(/^[A-Za-z0-9_-]{40,}$/, 'an X25519 PKCS#8 key, base64url'),
    GATEWAY_PG_PORT: port.default(15432),
    GATEWAY_PG_HOST: z.string().default('0.0.0.0'),
    GATEWAY_HTTP_PORT: port.default(8085),
    GATEWAY_HTTP_HOST: z.string().default('0.0.0.0'),
    GATEWAY_TLS_CERT: z.string().optional(),
    GATEWAY_TLS_KEY: z.string().optional(),
    GATEWAY_ALLOW_PLAINTEXT: bool,
    /** Address clients are told to use (heartbeats); optional */
    GATEWAY_PUBLIC_ADDRESS: z.string().optional(),
    REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
}).refine((e) => !!e.GATEWAY_TLS_CERT === !!e.GATEWAY_TLS_KEY, {
    message: 'GATEWAY_TLS_CERT and GATEWAY_TLS_KEY go together',
    path: ['GATEWAY_TLS_KEY'],
});
export function loadGatewayEnv(env = process.env) {
    return loadEnvOrExit('gateway', gatewayEnvSchema, env);
}
/** For tests and embedding: throws instead of exiting. */
export function parseGatewayEnv(env) {
    const r = parseEnv(gatewayEnvSchema, env);
    if (!r.ok)
        throw new Error(`invalid gateway environment: ${r.errors.join('; ')}`);
    return r.env;
}
//# sourceMappingURL=env.js.map