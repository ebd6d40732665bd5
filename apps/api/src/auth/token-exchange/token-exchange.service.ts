import { Injectable, Logger } from '@nestjs/common';
import type { TrustPolicyModel as TrustPolicy } from '@portcullis/db';
import { decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { assertCompactJws } from '@portcullis/protocol';
import { BadRequestError, ServiceUnavailableError } from '../../common/errors.js';
import { describeZodIssues } from '../../common/zod-validation.pipe.js';
import { IdentitiesService } from '../../identities/identities.service.js';
import { TrustPoliciesService } from '../../trust-policies/trust-policies.service.js';
import { subjectMatches } from '../../trust-policies/subject-pattern.js';
import { TokensService } from '../tokens.service.js';
import {
  TOKEN_EXCHANGE_GRANT, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT, tokenExchangeRequestSchema,
  type TokenExchangeResponse,
} from './dto/token-exchange.dto.js';
import { IssuerUnavailableError, WorkloadJwksService } from './workload-jwks.service.js';

/** Asymmetric algorithms only: a shared-secret (HS*) or `none` token can never be a workload identity. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const CLOCK_TOLERANCE_S = 30;

/** RFC 6749 §5.2 error codes, in our error envelope, status 400. */
const invalidGrant = (message: string) => new BadRequestError(message, 'invalid_grant');
const invalidRequest = (message: string) => new BadRequestError(message, 'invalid_request');

/**
 * RFC 8693 token exchange: a JWT from a trusted workload issuer (Kubernetes service-account token, CI OIDC
 * token, an IdP's client_credentials token) becomes a short-lived Portcullis api token for the agent
 * identity its trust policy names. Nothing here creates a long-lived credential.
 */
@Injectable()
export class TokenExchangeService {
  private readonly logger = new Logger(TokenExchangeService.name);

  constructor(
    private readonly trustPolicies: TrustPoliciesService,
    private readonly jwks: WorkloadJwksService,
    private readonly identities: IdentitiesService,
    private readonly tokens: TokensService,
  ) {}

  async exchange(body: unknown): Promise<TokenExchangeResponse> {
    const parsed = tokenExchangeRequestSchema.safeParse(body ?? {});
    if (!parsed.success) throw invalidRequest(describeZodIssues(parsed.error).join('; '));
    const req = parsed.data;
    if (req.grant_type !== TOKEN_EXCHANGE_GRANT) {
      throw new BadRequestError(`grant_type: expected ${TOKEN_EXCHANGE_GRANT}`, 'unsupported_grant_type');
    }
    if (req.subject_token_type !== TOKEN_TYPE_JWT && req.subject_token_type !== TOKEN_TYPE_ACCESS_TOKEN) {
      throw invalidRequest(`subject_token_type: expected ${TOKEN_TYPE_JWT} or ${TOKEN_TYPE_ACCESS_TOKEN}`);
    }
    if (req.requested_token_type !== undefined && req.requested_token_type !== TOKEN_TYPE_ACCESS_TOKEN) {
      throw invalidRequest(`requested_token_type: only ${TOKEN_TYPE_ACCESS_TOKEN} is issued`);
    }
    if (req.actor_token !== undefined || req.actor_token_type !== undefined) {
      throw invalidRequest('actor_token: delegation is not supported');
    }

    const { policy, claims } = await this.verify(req.subject_token);
    const identity = await this.identities.upsertExternal({
      kind: 'agent',
      subject: policy.identity,
      displayName: policy.identity,
      issuer: policy.issuer,
      groups: policy.groups,
      source: 'trust',
    });
    if (identity.disabled) throw invalidGrant(`identity ${policy.identity} is disabled`);

    // issueApiToken records the token.issued audit event (actor: the agent identity).
    const token = await this.tokens.issueApiToken(identity.id);
    this.logger.log(`token exchange: ${claims.sub} from ${policy.issuer} → ${policy.identity} (trust policy ${policy.name}, jti ${token.jti})`);
    return {
      access_token: token.access_token,
      issued_token_type: TOKEN_TYPE_ACCESS_TOKEN,
      token_type: 'Bearer',
      expires_in: token.expires_in,
    };
  }

  /** Verifies the subject token against the policies that trust its issuer; returns the first that accepts it. */
  private async verify(token: string): Promise<{ policy: TrustPolicy; claims: JWTPayload & { sub: string } }> {
    let unverified: JWTPayload;
    try {
      assertCompactJws(token);
      unverified = decodeJwt(token);
    } catch {
      throw invalidGrant('subject_token is not a JWT');
    }
    // The unverified `iss` only selects candidate policies; the signature is checked against that issuer's keys.
    const issuer = unverified.iss;
    if (typeof issuer !== 'string' || !issuer) throw invalidGrant('subject_token has no iss claim');
    const candidates = await this.trustPolicies.findByIssuer(issuer);
    if (candidates.length === 0) throw this.reject(`issuer ${issuer} is not trusted`, issuer);

    // Policies of one issuer usually share its keys; verify once per key source.
    const bySource = new Map<string, TrustPolicy[]>();
    for (const p of candidates) {
      const key = p.jwksUri ?? '';
      bySource.set(key, [...(bySource.get(key) ?? []), p]);
    }

    let failure: Error | undefined;
    const audienceMisses: string[] = [];
    for (const [jwksUri, policies] of bySource) {
      let payload: JWTPayload;
      try {
        const keys = await this.jwks.keySetFor(issuer, jwksUri || null);
        ({ payload } = await jwtVerify(token, keys, {
          issuer,
          algorithms: ALGORITHMS,
          clockTolerance: CLOCK_TOLERANCE_S,
          requiredClaims: ['exp', 'sub'],
        }));
      } catch (err) {
        // A key set we cannot fetch (timeout, refused, not JSON) is not the caller's fault.
        if (err instanceof IssuerUnavailableError || err instanceof joseErrors.JWKSTimeout || !(err instanceof joseErrors.JOSEError)) {
          this.logger.warn(`token exchange: keys of ${issuer} unavailable: ${(err as Error).message}`);
          throw new ServiceUnavailableError(`cannot fetch the signing keys of ${issuer}; try again later`, 'temporarily_unavailable', { cause: err });
        }
        failure ??= err as Error;
        continue;
      }
      const sub = payload.sub as string;
      const aud = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []);
      const audOk = policies.filter((p) => aud.includes(p.audience));
      if (audOk.length === 0) {
        audienceMisses.push(...policies.map((p) => p.audience));
        continue;
      }
      const match = audOk.find((p) => subjectMatches(p.subjectPattern, sub));
      if (match) {
        if (match.singleUse) await this.claimOnce(match, issuer, payload);
        return { policy: match, claims: { ...payload, sub } };
      }
      throw this.reject(`subject "${sub}" matches no trust policy of ${issuer}`, issuer);
    }
    if (audienceMisses.length) {
      // The accepted audiences are configuration, not the caller's business: say only that it did not match.
      this.logger.warn(`token exchange refused (${issuer}): audience not one of ${[...new Set(audienceMisses)].join(', ')}`);
      throw invalidGrant('subject_token audience is not accepted');
    }
    throw this.reject(describeJoseError(failure), issuer);
  }

  /** Replay protection of a single-use trust policy: one exchange per subject token (iss + jti) while it is valid. */
  private async claimOnce(policy: TrustPolicy, issuer: string, payload: JWTPayload): Promise<void> {
    const jti = payload.jti;
    if (typeof jti !== 'string' || !jti || jti.length > 1000) throw this.reject(`subject_token has no jti claim; trust policy ${policy.name} accepts each token once and needs it`, issuer);
    const acceptedUntil = new Date(((payload.exp as number) + CLOCK_TOLERANCE_S) * 1000);
    if (!(await this.trustPolicies.claimSubjectToken(policy, issuer, jti, acceptedUntil))) {
      throw this.reject('subject_token was already exchanged (single use)', issuer);
    }
  }

  private reject(message: string, issuer: string): BadRequestError {
    this.logger.warn(`token exchange refused (${issuer}): ${message}`);
    return invalidGrant(message);
  }
}

function describeJoseError(err: Error | undefined): string {
  if (err instanceof joseErrors.JWTExpired) return 'subject_token has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `subject_token ${err.claim} claim is invalid: ${err.reason}`;
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'subject_token signature verification failed';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'subject_token was not signed by a key of its issuer';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'subject_token algorithm is not allowed (asymmetric signatures only)';
  if (err instanceof joseErrors.JOSEError) return `subject_token is invalid: ${err.message}`;
  return 'subject_token could not be verified';
}
