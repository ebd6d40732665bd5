import { Injectable } from '@nestjs/common';
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';

const DISCOVERY_TTL_MS = 10 * 60_000;
const FETCH_TIMEOUT_MS = 5_000;

/** The issuer's discovery document or JWKS could not be fetched (our problem or theirs, not the caller's token). */
export class IssuerUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IssuerUnavailableError';
  }
}

/**
 * Key sets of trusted workload issuers. The JWKS URL is the trust policy's `jwksUri` or the issuer's
 * `/.well-known/openid-configuration` → `jwks_uri`. jose's remote key set caches keys and refetches on an
 * unknown `kid` (with a cooldown), so rotation at the issuer just works. Only issuers named by a trust
 * policy are ever fetched: the caller's token cannot make us call an arbitrary URL.
 */
@Injectable()
export class WorkloadJwksService {
  private readonly keySets = new Map<string, JWTVerifyGetKey>();
  private readonly discovered = new Map<string, { jwksUri: string; until: number }>();

  async keySetFor(issuer: string, jwksUri?: string | null): Promise<JWTVerifyGetKey> {
    const uri = jwksUri ?? (await this.discoverJwksUri(issuer));
    let set = this.keySets.get(uri);
    if (!set) {
      set = createRemoteJWKSet(new URL(uri), { timeoutDuration: FETCH_TIMEOUT_MS, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 });
      this.keySets.set(uri, set);
    }
    return set;
  }

  private async discoverJwksUri(issuer: string): Promise<string> {
    const hit = this.discovered.get(issuer);
    if (hit && hit.until > Date.now()) return hit.jwksUri;
    const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    let meta: { issuer?: unknown; jwks_uri?: unknown };
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: 'application/json' }, redirect: 'error' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      meta = (await res.json()) as typeof meta;
    } catch (err) {
      throw new IssuerUnavailableError(`cannot fetch the discovery document of ${issuer}: ${(err as Error).message}`, { cause: err });
    }
    // OIDC Discovery §4.3: the document must name the issuer it was fetched for.
    if (meta.issuer !== issuer) throw new IssuerUnavailableError(`discovery document of ${issuer} names issuer ${String(meta.issuer)}`);
    if (typeof meta.jwks_uri !== 'string' || !/^https?:\/\//.test(meta.jwks_uri)) {
      throw new IssuerUnavailableError(`discovery document of ${issuer} has no usable jwks_uri`);
    }
    this.discovered.set(issuer, { jwksUri: meta.jwks_uri, until: Date.now() + DISCOVERY_TTL_MS });
    return meta.jwks_uri;
  }
}
