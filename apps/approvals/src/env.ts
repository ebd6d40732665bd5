import { DEFAULT_NATS_PREFIX, logLevelSchema, masterKeySchema, portSchema, tokenNameSchema } from '@portcullis/protocol';
import { z } from 'zod';

export const approvalsEnvSchema = z.object({
  DATABASE_URL: z.string().default('postgresql://postgres@127.0.0.1:5432/portcullis'),
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  NATS_URL: z.string().default('nats://127.0.0.1:4222'),
  NATS_PREFIX: tokenNameSchema.default(DEFAULT_NATS_PREFIX),
  PORTCULLIS_MASTER_KEY: masterKeySchema,
  APPROVALS_HTTP_PORT: portSchema.default(8081),
  APPROVALS_HTTP_HOST: z.string().default('0.0.0.0'),
  APPROVALS_QUEUE_PREFIX: z.string().min(1).default('bull'),
  /** base URL put into webhook bodies so a chat message can link straight to the decision */
  APPROVALS_API_URL: z.string().default('http://127.0.0.1:8080'),
  /** how long an approved one-time approval stays usable after its decision */
  APPROVALS_ONE_TIME_TTL_SECONDS: z.coerce.number().int().positive().default(3600),
  APPROVALS_EXPIRY_INTERVAL_MS: z.coerce.number().int().positive().default(1000),
  APPROVALS_WEBHOOK_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(5),
  APPROVALS_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
  LOG_LEVEL: logLevelSchema.default('info'),
});
export type ApprovalsEnv = z.infer<typeof approvalsEnvSchema>;
