import { createPublicKey } from 'node:crypto';
import { z } from 'zod';
import { ed25519PublicJwkSchema } from '@portcullis/protocol';

/** Raw 32-byte X25519 public key, base64url (what generatePoolKeyPair() returns as publicKey). */
export const poolPublicKey = z
  .string()
  .regex(/^[A-Za-z0-9_-]{43}$/, 'expected a raw 32-byte X25519 public key, base64url (43 characters)')
  .refine((k) => {
    try {
      createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: k }, format: 'jwk' });
      return true;
    } catch {
      return false;
    }
  }, 'not a valid X25519 public key');

export const putPoolSchema = z.strictObject({ publicKey: poolPublicKey });
export type PutPool = z.infer<typeof putPoolSchema>;

export const poolViewSchema = z.object({
  name: z.string(),
  publicKey: z.string(),
  revision: z.number().int(),
  connections: z.number().int(),
  gateways: z.number().int(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type PoolView = z.infer<typeof poolViewSchema>;

export const gatewayViewSchema = z.object({
  id: z.string(),
  pool: z.string(),
  version: z.string(),
  address: z.string().nullable(),
  liveSessions: z.number().int(),
  configRevision: z.number().int().nullable(),
  startedAt: z.string(),
  lastHeartbeat: z.string(),
  /** a heartbeat arrived within the last 15 s */
  live: z.boolean(),
});
export type GatewayView = z.infer<typeof gatewayViewSchema>;

/** The JWK set gateways are deployed with (GATEWAY_CONFIG_PUBLIC_KEY): the keys that sign config snapshots. */
export const configKeysSchema = z.object({ keys: z.array(ed25519PublicJwkSchema) });
export type ConfigKeys = z.infer<typeof configKeysSchema>;
