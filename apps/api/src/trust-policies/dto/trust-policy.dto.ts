import { z } from 'zod';

const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

const isHttpUrl = (v: string) => /^https?:\/\//.test(v) && URL.canParse(v);

export const createTrustPolicySchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'expected 1-100 letters, digits, ., _ or -, starting with a letter or digit'),
  /**
   * Exact `iss` of the workload tokens. An http(s) issuer's discovery document names its JWKS; an issuer that is
   * not a URL (legacy Kubernetes `kubernetes/serviceaccount`) needs `jwksUri`.
   */
  issuer: z.string().min(1).max(500),
  /** One value the token's `aud` must contain. */
  audience: z.string().min(1).max(500),
  /** Glob over the token's `sub`; `*` matches any run of characters. */
  subjectPattern: z.string().min(1).max(500),
  /** The agent identity the token becomes. */
  identity: z.string().regex(/^agent:[A-Za-z0-9][A-Za-z0-9._@/-]{0,99}$/, 'must start with "agent:" followed by a name (letters, digits, . _ @ / -)'),
  /** Portcullis groups (must exist) the agent is a member of while it holds tokens from this policy. */
  groups: z.array(z.string().min(1).max(100)).max(50).refine((g) => new Set(g).size === g.length, 'groups must be unique').default([]),
  /** JWKS URL when the issuer has no discovery document. */
  jwksUri: httpUrl.optional(),
  /** Replay protection: each subject token (iss + jti) is exchanged at most once until it expires; tokens without jti are refused. */
  singleUse: z.boolean().default(false),
}).refine((p) => p.jwksUri !== undefined || isHttpUrl(p.issuer), {
  path: ['issuer'],
  message: 'expected an http(s) URL (an OIDC issuer), or give jwksUri',
});
export type CreateTrustPolicyDto = z.infer<typeof createTrustPolicySchema>;

export const trustPolicySchema = z.object({
  id: z.string(),
  name: z.string(),
  issuer: z.string(),
  audience: z.string(),
  subjectPattern: z.string(),
  jwksUri: z.string().nullable(),
  identity: z.string(),
  groups: z.array(z.string()),
  singleUse: z.boolean(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type TrustPolicyView = z.infer<typeof trustPolicySchema>;
