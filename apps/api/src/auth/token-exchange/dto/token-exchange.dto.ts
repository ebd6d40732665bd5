import { z } from 'zod';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

/**
 * RFC 8693 §2.1 request (form-urlencoded or JSON). Only what we act on is checked; other standard
 * parameters (client_id, scope, audience, resource) are accepted and ignored — the trust policy decides.
 */
export const tokenExchangeRequestSchema = z.object({
  grant_type: z.string({ error: 'required' }).min(1, 'required'),
  subject_token: z.string({ error: 'required' }).min(1, 'required').max(16 * 1024, 'too long'),
  subject_token_type: z.string({ error: 'required' }).min(1, 'required'),
  requested_token_type: z.string().optional(),
  actor_token: z.string().optional(),
  actor_token_type: z.string().optional(),
});
export type TokenExchangeRequest = z.infer<typeof tokenExchangeRequestSchema>;

export const tokenExchangeResponseSchema = z.object({
  access_token: z.string(),
  issued_token_type: z.literal(TOKEN_TYPE_ACCESS_TOKEN),
  token_type: z.literal('Bearer'),
  expires_in: z.number().int(),
});
export type TokenExchangeResponse = z.infer<typeof tokenExchangeResponseSchema>;
