import { z } from 'zod';
import { parseMasterKey } from './keys.js';

/**
 * Zod fragments for the env keys several apps read the same way, so each bound and message is
 * written once. Each app's schema (`*EnvSchema`) still lists its own keys and defaults.
 */

/** Levels pino accepts, for LOG_LEVEL. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const logLevelSchema = z.enum(LOG_LEVELS);

/** A TCP port; 0 lets the OS pick one (tests). */
export const portSchema = z.coerce.number().int().min(0).max(65535);

/** A name that is one NATS subject token or a consumer/pool/gateway id: letters, digits, _ and -. */
export const tokenNameSchema = z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only');

/** PORTCULLIS_MASTER_KEY, parsed to its 32 bytes (see parseMasterKey). */
export const masterKeySchema = z.string().transform((s, ctx) => {
  const key = parseMasterKey(s);
  if (!key) {
    ctx.addIssue({ code: 'custom', message: 'must be 32 bytes as 64 hex characters or base64' });
    return z.NEVER;
  }
  return key;
});
