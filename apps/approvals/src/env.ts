import { DEFAULT_NATS_PREFIX, parseMasterKey } from '@portcullis/protocol';
import { z } from 'zod';

const masterKey = z.string().transform((s, ctx) => {
  const key = parseMasterKey(s);
  if (!key) {
    ctx.addIssue({ code: 'custom', message: 'must be 32 bytes as 64 hex characters or base64' });
    return z.NEVER;
  }
  return key;
});

export const approvalsEnvSchema = z.object({
  DATABASE_URL: z.string().default('postgresql://postgres@127.0.0.1:5432/portcullis'),
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  NATS_URL: z.string().default('nats://127.0.0.1:4222'),
  NATS_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default(DEFAULT_NATS_PREFIX),
  PORTCULLIS_MASTER_KEY: masterKey,
  APPROVALS_HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8081),
  APPROVALS_HTTP_HOST: z.string().default('0.0.0.0'),
  APPROVALS_QUEUE_PREFIX: z.string().min(1).default('bull'),
  /** base URL put into webhook bodies so a chat message can link straight to the decision */
  APPROVALS_API_URL: z.string().default('http://127.0.0.1:8080'),
  /** how long an approved one-time approval stays usable after its decision */
  APPROVALS_ONE_TIME_TTL_SECONDS: z.coerce.number().int().positive().default(3600),
  APPROVALS_EXPIRY_INTERVAL_MS: z.coerce.number().int().positive().default(1000),
  APPROVALS_WEBHOOK_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(5),
  APPROVALS_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type ApprovalsEnv = z.infer<typeof approvalsEnvSchema>;
