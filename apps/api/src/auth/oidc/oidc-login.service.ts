import { Injectable, Logger } from '@nestjs/common';
import { PrismaClient } from '@portcullis/db';
import type { Request } from 'express';
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { Strategy as OpenIDConnectStrategy } from 'passport-openidconnect';
import { ApiError, ForbiddenError, ServiceUnavailableError, UnauthorizedError } from '../../common/errors.js';
import { ApiConfig } from '../../config/env.js';
import { IdentitiesService } from '../../identities/identities.service.js';
import { BOOTSTRAP_SUBJECT } from '../principal.js';
import { TokensService } from '../tokens.service.js';

const FETCH_TIMEOUT_MS = 5_000;
const MAX_GROUP_CLAIMS = 500;

/** What a passport strategy run ended with (passport's success/fail/redirect/pass/error, as a value). */
export type StrategyOutcome =
  | { kind: 'success'; user: OidcUser; info: { state?: { cliRedirect?: string; consoleRedirect?: string } } | undefined }
  | { kind: 'fail'; message: string; status: number }
  | { kind: 'redirect'; url: string; status: number }
  | { kind: 'pass' }
  | { kind: 'error'; error: Error };

/** The verified claims of a login (ID token claims, then userinfo on top). */
export interface OidcUser {
  issuer: string;
  claims: Record<string, unknown>;
}

export interface LoginResult {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  identity: {
    id: string;
    subject: string;
    kind: 'person';
    displayName: string | null;
    email: string | null;
    issuer: string | null;
    groups: string[];
    roles: string[];
  };
}

interface OidcSettings {
  issuer: string;
  clientId: string;
  clientSecret: string;
  redirectUri?: string;
  groupsClaim: string;
}

interface Discovered {
  strategy: OpenIDConnectStrategy;
  idTokenKeys: JWTVerifyGetKey;
  settings: OidcSettings;
}

class BadGatewayError extends ApiError {
  constructor(message: string, code = 'oidc_provider_error', options?: { cause?: unknown }) {
    super(502, code, message, options);
  }
}

/** Reads a claim by name, or by a dotted path (`realm_access.roles`) for IdPs that nest their groups. */
function claimAt(claims: Record<string, unknown>, path: string): unknown {
  if (path in claims) return claims[path];
  return path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), claims);
}

function groupClaims(value: unknown): string[] {
  const list = Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
  return [...new Set(list.filter((g): g is string => typeof g === 'string' && g.length > 0 && g.length <= 256))].slice(0, MAX_GROUP_CLAIMS);
}

/**
 * People sign in with the OIDC authorization-code flow (passport-openidconnect against OIDC_ISSUER_URL).
 * The IdP's groups claim maps onto Portcullis groups (by name, or a group's `idpGroups`), and the login
 * ends with a short-lived api token. Discovery happens at the first login, so the api can start before the IdP.
 */
@Injectable()
export class OidcLoginService {
  private readonly logger = new Logger(OidcLoginService.name);
  private discovered: Promise<Discovered> | null = null;

  constructor(
    private readonly config: ApiConfig,
    private readonly prisma: PrismaClient,
    private readonly identities: IdentitiesService,
    private readonly tokens: TokensService,
  ) {}

  private settings(): OidcSettings {
    const env = this.config.env as typeof this.config.env & { OIDC_GROUPS_CLAIM?: string };
    const { OIDC_ISSUER_URL: issuer, OIDC_CLIENT_ID: clientId, OIDC_CLIENT_SECRET: clientSecret } = env;
    if (!issuer || !clientId || !clientSecret) {
      const missing = [!issuer && 'OIDC_ISSUER_URL', !clientId && 'OIDC_CLIENT_ID', !clientSecret && 'OIDC_CLIENT_SECRET'].filter(Boolean);
      throw new ServiceUnavailableError(
        `OIDC login is not configured: set ${missing.join(', ')} (and OIDC_REDIRECT_URI) to your IdP's values`,
        'oidc_not_configured',
      );
    }
    const groupsClaim = env.OIDC_GROUPS_CLAIM?.trim() || process.env.OIDC_GROUPS_CLAIM?.trim() || 'groups';
    return { issuer, clientId, clientSecret, redirectUri: env.OIDC_REDIRECT_URI, groupsClaim };
  }

  /** Runs the strategy on this request: starts the login (redirect) or finishes it (callback). */
  async authenticate(req: Request, options: Record<string, unknown>): Promise<StrategyOutcome> {
    const { strategy } = await this.discover();
    return new Promise<StrategyOutcome>((resolve) => {
      // passport augments a per-request copy of the strategy with these actions; so do we.
      const run = Object.create(strategy) as OpenIDConnectStrategy & Record<string, unknown>;
      run.success = (user: OidcUser, info?: { state?: { cliRedirect?: string; consoleRedirect?: string } }) => resolve({ kind: 'success', user, info });
      run.fail = (challenge?: { message?: string } | string | number, status?: number) => {
        const message = typeof challenge === 'object' && challenge?.message ? challenge.message : 'login failed';
        resolve({ kind: 'fail', message, status: typeof challenge === 'number' ? challenge : (status ?? 401) });
      };
      run.redirect = (url: string, status?: number) => resolve({ kind: 'redirect', url, status: status ?? 302 });
      run.pass = () => resolve({ kind: 'pass' });
      run.error = (error: Error) => resolve({ kind: 'error', error });
      try {
        run.authenticate(req, options);
      } catch (error) {
        resolve({ kind: 'error', error: error as Error });
      }
    });
  }

  /** Turns a callback outcome into an error the client sees, or the verified user. */
  userFrom(outcome: StrategyOutcome): { user: OidcUser; cliRedirect?: string; consoleRedirect?: string } {
    switch (outcome.kind) {
      case 'success':
        return { user: outcome.user, cliRedirect: outcome.info?.state?.cliRedirect, consoleRedirect: outcome.info?.state?.consoleRedirect };
      case 'fail':
        throw new UnauthorizedError(`login failed: ${outcome.message}`, 'oidc_login_failed');
      case 'error': {
        const e = outcome.error as Error & { code?: string; oauthError?: unknown };
        // AuthorizationError / TokenError carry the IdP's OAuth error code: the login itself was refused.
        if (typeof e.code === 'string' && (e.name === 'AuthorizationError' || e.name === 'TokenError')) {
          throw new UnauthorizedError(`login failed: ${e.code}${e.message ? ` (${e.message})` : ''}`, 'oidc_login_failed');
        }
        if (e instanceof ApiError) throw e;
        this.logger.warn(`OIDC callback failed: ${e.message}`);
        throw new BadGatewayError(`the identity provider could not complete the login: ${e.message}`, 'oidc_provider_error', { cause: e });
      }
      default:
        throw new BadGatewayError('the login did not complete');
    }
  }

  /** Upserts the person, maps IdP groups to Portcullis groups, and issues an api token. */
  async completeLogin(user: OidcUser): Promise<LoginResult> {
    const { settings } = await this.discover();
    const c = user.claims;
    const subject = typeof c.preferred_username === 'string' && c.preferred_username ? c.preferred_username : String(c.sub ?? '');
    if (!subject || subject.length > 200) throw new UnauthorizedError('login failed: the IdP sent no usable preferred_username or sub', 'oidc_login_failed');
    // Agent and bootstrap subjects are not the IdP's to hand out.
    if (subject.startsWith('agent:') || subject === BOOTSTRAP_SUBJECT) {
      throw new ForbiddenError(`login refused: "${subject}" is a reserved subject`, 'reserved_subject');
    }
    // upsertExternal maps these claim values onto groups whose name or idpGroups contain them.
    const idpGroups = groupClaims(claimAt(c, settings.groupsClaim));
    const identity = await this.identities.upsertExternal({
      kind: 'person',
      subject,
      displayName: typeof c.name === 'string' ? c.name : undefined,
      email: typeof c.email === 'string' ? c.email : undefined,
      issuer: user.issuer,
      groups: idpGroups,
      source: 'idp',
    });
    if (identity.disabled) throw new ForbiddenError(`identity ${subject} is disabled`, 'identity_disabled');

    // issueApiToken records the token.issued audit event.
    const token = await this.tokens.issueApiToken(identity.id);
    this.logger.log(`OIDC login: ${subject} from ${user.issuer} (IdP groups: ${idpGroups.join(', ') || 'none'}, jti ${token.jti})`);

    const memberships = await this.prisma.groupMember.findMany({ where: { identityId: identity.id }, include: { group: true } });
    return {
      access_token: token.access_token,
      token_type: 'Bearer',
      expires_in: token.expires_in,
      identity: {
        id: identity.id,
        subject: identity.subject,
        kind: 'person',
        displayName: identity.displayName ?? null,
        email: identity.email ?? null,
        issuer: identity.issuer ?? null,
        groups: memberships.map((m) => m.group.name).sort(),
        roles: [...new Set(memberships.flatMap((m) => m.group.roles))].sort(),
      },
    };
  }

  private discover(): Promise<Discovered> {
    const settings = this.settings();
    this.discovered ??= this.build(settings).catch((err: unknown) => {
      this.discovered = null; // retry at the next login
      throw err;
    });
    return this.discovered;
  }

  private async build(settings: OidcSettings): Promise<Discovered> {
    const url = `${settings.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    let meta: Record<string, unknown>;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      meta = (await res.json()) as Record<string, unknown>;
    } catch (err) {
      this.logger.warn(`OIDC discovery at ${url} failed: ${(err as Error).message}`);
      throw new ServiceUnavailableError(`the identity provider at ${settings.issuer} is unreachable (${(err as Error).message})`, 'oidc_unavailable', { cause: err });
    }
    const issuer = meta.issuer;
    if (typeof issuer !== 'string' || issuer.replace(/\/+$/, '') !== settings.issuer.replace(/\/+$/, '')) {
      throw new ServiceUnavailableError(`the discovery document of ${settings.issuer} names issuer ${String(issuer)}`, 'oidc_unavailable');
    }
    for (const key of ['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const) {
      if (typeof meta[key] !== 'string') throw new ServiceUnavailableError(`the discovery document of ${issuer} has no ${key}`, 'oidc_unavailable');
    }
    const idTokenKeys = createRemoteJWKSet(new URL(meta.jwks_uri as string), { timeoutDuration: FETCH_TIMEOUT_MS });
    const userInfoURL = typeof meta.userinfo_endpoint === 'string' ? meta.userinfo_endpoint : undefined;

    const strategy = new OpenIDConnectStrategy(
      {
        issuer,
        authorizationURL: meta.authorization_endpoint as string,
        tokenURL: meta.token_endpoint as string,
        userInfoURL,
        clientID: settings.clientId,
        clientSecret: settings.clientSecret,
        // Relative: passport resolves it against the request's host when OIDC_REDIRECT_URI is unset.
        callbackURL: settings.redirectUri ?? '/v1/auth/callback',
        scope: ['profile', 'email', 'groups'],
        nonce: true,
        skipUserProfile: !userInfoURL,
      },
      (iss, uiProfile, _idProfile, _context, idToken, _accessToken, _refreshToken, _params, done) => {
        // passport-openidconnect checks iss/aud/exp/nonce but not the signature: verify it too.
        jwtVerify(idToken, idTokenKeys, { issuer, audience: settings.clientId })
          .then(({ payload }: { payload: JWTPayload }) => {
            const claims: Record<string, unknown> = { ...payload, ...(uiProfile?._json ?? {}) };
            if (uiProfile?._json && uiProfile._json.sub !== payload.sub) throw new Error('userinfo sub does not match the ID token');
            done(null, { issuer: iss, claims } satisfies OidcUser);
          })
          .catch((err: unknown) => done(new UnauthorizedError(`login failed: ID token rejected: ${(err as Error).message}`, 'oidc_login_failed')));
      },
    );
    return { strategy, idTokenKeys, settings };
  }
}
