import { DEFAULT_NATS_PREFIX, loadEnvOrExit, parseEnv, parseMasterKey } from '@portcullis/protocol';
import { z } from 'zod';

const masterKey = z.string().transform((s, ctx) => {
  const key = parseMasterKey(s);
  if (!key) {
    ctx.addIssue({ code: 'custom', message: 'must be 32 bytes as 64 hex characters or base64' });
    return z.NEVER;
  }
  return key;
});

export const recorderEnvSchema = z.object({
  DATABASE_URL: z.string().min(1).default('postgresql://postgres@127.0.0.1:5432/portcullis'),
  NATS_URL: z.string().min(1).default('nats://127.0.0.1:4222'),
  NATS_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only').default(DEFAULT_NATS_PREFIX),
  /** verifies event signatures (deriveKey 'event-signing') and signs checkpoints (deriveKey 'checkpoint-signing') */
  PORTCULLIS_MASTER_KEY: masterKey,
  RECORDER_HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8082),
  RECORDER_HTTP_HOST: z.string().default('0.0.0.0'),
  /**
   * durable consumer name prefix: `<name>-p<k>` per event partition, `<name>-control` for
   * control-plane events (recorders sharing a consumer split its work)
   */
  RECORDER_CONSUMER: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only').default('recorder'),
  /**
   * `i/n`: this is recorder i of n (0-based) and owns the event partitions p with p mod n = i
   * (shard 0 also takes control-plane events). Each partition's sessions are then chained by
   * one recorder; a partition owned by two (a mis-set shard) is still recorded correctly, slower.
   */
  RECORDER_SHARD: z.string().regex(/^\d+\/[1-9]\d*$/, 'i/n, e.g. 0/2').default('0/1').transform((v, ctx) => {
    const [index, count] = v.split('/').map(Number) as [number, number];
    if (index >= count) {
      ctx.addIssue({ code: 'custom', message: `shard index ${index} must be below the shard count ${count}` });
      return z.NEVER;
    }
    return { index, count };
  }),
  /** events per transaction at most; bigger batches spread the per-batch cost (locks, Session upserts, commit) */
  RECORDER_BATCH: z.coerce.number().int().min(1).max(20_000).default(5000),
  /** payload bytes per transaction at most (a batch always takes at least one event) */
  RECORDER_BATCH_BYTES: z.coerce.number().int().min(1024).default(8 * 1024 * 1024),
  /** JetStream redelivers an unacknowledged event after this long (also bounds recovery after a crash) */
  RECORDER_ACK_WAIT_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
  /** how long a session event may wait for a missing predecessor before it is chained across the gap */
  RECORDER_GAP_SECONDS: z.coerce.number().min(0.1).max(86_400).default(30),
  /** sessions that ended (or, unended, started) longer ago than this are deleted; 0 keeps everything */
  RETENTION_DAYS: z.coerce.number().min(0).default(0),
  RETENTION_INTERVAL_SECONDS: z.coerce.number().int().min(1).default(3600),
  CHECKPOINT_SECONDS: z.coerce.number().min(0.1).default(60),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type RecorderEnv = z.infer<typeof recorderEnvSchema>;

export function loadRecorderEnv(env: NodeJS.ProcessEnv = process.env): RecorderEnv {
  return loadEnvOrExit('recorder', recorderEnvSchema, env);
}

/** For tests and embedding: throws instead of exiting. */
export function parseRecorderEnv(env: Record<string, string | undefined>): RecorderEnv {
  const r = parseEnv(recorderEnvSchema, env as NodeJS.ProcessEnv);
  if (!r.ok) throw new Error(`invalid recorder environment: ${r.errors.join('; ')}`);
  return r.env;
}
