import { z } from 'zod';
export declare const gatewayEnvSchema: z.ZodObject<{
    NATS_URL: z.ZodDefault<z.ZodString>;
    NATS_PREFIX: z.ZodDefault<z.ZodString>;
    GATEWAY_POOL: z.ZodDefault<z.ZodString>;
    GATEWAY_ID: z.ZodDefault<z.ZodString>;
    GATEWAY_POOL_KEY: z.ZodString;
    GATEWAY_PG_PORT: z.ZodDefault<z.ZodCoercedNumber<unknown>>;
    GATEWAY_PG_HOST: z.ZodDefault<z.ZodString>;
    GATEWAY_HTTP_PORT: z.ZodDefault<z.ZodCoercedNumber<unknown>>;
    GATEWAY_HTTP_HOST: z.ZodDefault<z.ZodString>;
    GATEWAY_TLS_CERT: z.ZodOptional<z.ZodString>;
    GATEWAY_TLS_KEY: z.ZodOptional<z.ZodString>;
    GATEWAY_ALLOW_PLAINTEXT: z.ZodPipe<z.ZodDefault<z.ZodEnum<{
        true: "true";
        0: "0";
        false: "false";
        1: "1";
        yes: "yes";
        no: "no";
    }>>, z.ZodTransform<boolean, "true" | "0" | "false" | "1" | "yes" | "no">>;
    GATEWAY_PUBLIC_ADDRESS: z.ZodOptional<z.ZodString>;
    REDIS_URL: z.ZodDefault<z.ZodString>;
    LOG_LEVEL: z.ZodDefault<z.ZodEnum<{
        error: "error";
        fatal: "fatal";
        warn: "warn";
        info: "info";
        debug: "debug";
        trace: "trace";
        silent: "silent";
    }>>;
}, z.core.$strip>;
export type GatewayEnv = z.infer<typeof gatewayEnvSchema>;
export declare function loadGatewayEnv(env?: NodeJS.ProcessEnv): GatewayEnv;
/** For tests and embedding: throws instead of exiting. */
export declare function parseGatewayEnv(env: Record<string, string | undefined>): GatewayEnv;
