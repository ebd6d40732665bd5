import { z } from 'zod';
import { ROLES } from '@portcullis/protocol';

export const revokeBodySchema = z.strictObject({ jti: z.string().min(1).max(200) });
export type RevokeBody = z.infer<typeof revokeBodySchema>;

export const revokeResponseSchema = z.object({ jti: z.string(), revokedAt: z.string(), revokedBy: z.string(), alreadyRevoked: z.boolean() });

export const meResponseSchema = z.object({
  identityId: z.string().nullable(),
  subject: z.string(),
  kind: z.enum(['person', 'agent', 'bootstrap']),
  displayName: z.string().nullable(),
  email: z.string().nullable(),
  groups: z.array(z.string()),
  roles: z.array(z.enum(ROLES)),
  tokenId: z.string().nullable(),
});
export type MeResponse = z.infer<typeof meResponseSchema>;
