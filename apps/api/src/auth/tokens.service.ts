import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { CompactSign, SignJWT, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { PrismaClient } from '@portcullis/db';
import {
  API_AUDIENCE, GATEWAY_AUDIENCE, ROLES, TOKEN_ALG, apiTokenClaimsSchema, assertCompactJws, mayUseConnection,
  type ApiTokenClaims, type GatewayCredential, type GatewayTokenClaims, type Role,
} from '@portcullis/protocol';
import { ApiConfig } from '../config/env.js';
import { ForbiddenError, NotFoundError, UnauthorizedError } from '../common/errors.js';
import { isUuid } from '../common/ids.js';
import { ControlEventsService } from '../control-events/control-events.service.js';
import { ConfigPublisherService } from '../config-publisher/config-publisher.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { SigningKeysService, type PublicJwk } from './signing-keys.service.js';
import { hasRole, type ApiPrincipal } from './principal.js';

export interface IssuedApiToken {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  jti: string;
}

export type { GatewayCredential } from '@portcullis/protocol';

export interface GatewayCredentialOptions {
  mode?: 'wait' | 'fail-fast';
  ttlSeconds?: number;
  /** subject recorded as the actor of the token.issued event (defaults to the identity's own subject) */
  actor?: string;
  /** jti of the api token the caller asked with: revoking that token revokes this credential too */
  parentTokenId?: string | null;
  /** bind the credential to this SSH key (the key id of a user certificate for it): claim cnf['ssh-sha256'] */
  sshKeySha256?: string;
}

export interface RevokedToken {
  jti: string;
  revokedAt: string;
  revokedBy: string;
  alreadyRevoked: boolean;
}

/** The identity is disabled; no new tokens. */
export class IdentityDisabledError extends ForbiddenError {
  constructor(subject: string) {
    super(`identity ${subject} is disabled`, 'identity_disabled');
  }
}

/** Roles a set of group rows grants (unknown role strings are ignored, never trusted). */
export function rolesOf(groups: { roles: string[] }[]): Role[] {
  const set = new Set<Role>();
  for (const g of groups) for (const r of g.roles) if ((ROLES as readonly string[]).includes(r)) set.add(r as Role);
  return ROLES.filter((r) => set.has(r));
}

/**
 * Issues and verifies the api's tokens: api tokens (aud portcullis-api) and gateway credentials
 * (aud portcullis-gateway, bound to one connection). Every issued token has a Token row, so any of them
 * can be revoked by id; verification refuses ids it has no row for.
 */
@Injectable()
export class TokensService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly keys: SigningKeysService,
    private readonly config: ApiConfig,
    private readonly events: ControlEventsService,
    private readonly publisher: ConfigPublisherService,
    private readonly metrics: MetricsService,
  ) {}

  async issueApiToken(identityId: string, opts: { ttlSeconds?: number; actor?: string } = {}): Promise<IssuedApiToken> {
    const identity = await this.loadIdentity(identityId);
    const groups = identity.memberships.map((m) => m.group);
    const ttl = Math.min(opts.ttlSeconds ?? this.config.env.API_TOKEN_TTL_SECONDS, this.config.env.API_TOKEN_TTL_SECONDS);
    const jti = randomUUID();
    const now = Math.floor(Date.now() / 1000);
    const claims: Omit<ApiTokenClaims, 'sub' | 'jti'> = {
      typ: 'api',
      pid: identity.id,
      kind: identity.kind,
      groups: groups.map((g) => g.name).sort(),
      roles: rolesOf(groups),
    };
    const token = await this.sign(claims, { sub: identity.subject, jti, aud: API_AUDIENCE, iat: now, exp: now + ttl });
    await this.prisma.token.create({ data: { id: jti, identityId: identity.id, kind: 'api', audience: API_AUDIENCE, issuedAt: new Date(now * 1000), expiresAt: new Date((now + ttl) * 1000) } });
    this.metrics.tokensIssued.inc({ kind: 'api' });
    await this.events.record({
      type: 'token.issued',
      actor: opts.actor ?? identity.subject,
      data: { action: 'issue', target: jti, after: { kind: 'api', identity: identity.subject, audience: API_AUDIENCE, expiresAt: new Date((now + ttl) * 1000).toISOString() } },
    });
    return { access_token: token, token_type: 'Bearer', expires_in: ttl, jti };
  }

  /**
   * A minutes-long credential for one connection. Allowed when one of the identity's groups is in the
   * connection's allowedGroups, or when an approved access request for this identity and connection is still
   * running (then exp ≤ grantedUntil and claim `grant` names it). Otherwise ForbiddenError naming the connection.
   */
  async issueGatewayCredential(identityId: string, connectionName: string, opts: GatewayCredentialOptions = {}): Promise<GatewayCredential> {
    const identity = await this.loadIdentity(identityId);
    const connection = await this.prisma.connection.findUnique({ where: { name: connectionName } });
    if (!connection) throw new NotFoundError(`connection "${connectionName}" does not exist`, 'connection_not_found');
    const groups = identity.memberships.map((m) => m.group.name).sort();
    const now = Math.floor(Date.now() / 1000);
    const maxTtl = this.config.env.GATEWAY_TOKEN_TTL_SECONDS;
    let exp = now + Math.min(opts.ttlSeconds ?? maxTtl, maxTtl);
    const requests = await this.prisma.accessRequest.findMany({
      where: { identity: { in: [identity.subject, identity.id] }, connection: connection.name, status: 'approved', grantedUntil: { gt: new Date() } },
      select: { id: true, grantedUntil: true },
    });
    const grants = requests.flatMap((r) => (r.grantedUntil ? [{ id: r.id, until: r.grantedUntil.getTime() }] : []));
    const access = mayUseConnection({ groups, grants }, connection, Date.now());
    if (!access.allowed) {
      throw new ForbiddenError(
        `identity ${identity.subject} may not use connection "${connection.name}": none of its groups [${groups.join(', ')}] is allowed ` +
          `(allowed: [${connection.allowedGroups.join(', ')}]) and it has no approved access request`,
        'connection_not_allowed',
      );
    }
    let grant: string | undefined;
    let gexp: number | undefined;
    if (access.via === 'grant') {
      grant = access.grant.id;
      gexp = Math.floor(access.grant.until / 1000);
      exp = Math.min(exp, gexp);
      if (exp <= now) throw new ForbiddenError(`access grant ${grant} for connection "${connection.name}" has expired`, 'connection_not_allowed');
    }
    const jti = randomUUID();
    const claims: Omit<GatewayTokenClaims, 'sub' | 'jti'> = {
      typ: 'gateway',
      pid: identity.id,
      kind: identity.kind,
      groups,
      cn: connection.name,
      ...(grant ? { grant, gexp } : {}),
      ...(opts.mode ? { amode: opts.mode } : {}),
      ...(opts.sshKeySha256 ? { cnf: { 'ssh-sha256': opts.sshKeySha256 } } : {}),
    };
    const token = await this.sign(claims, { sub: identity.subject, jti, aud: GATEWAY_AUDIENCE, iat: now, exp });
    const expiresAt = new Date(exp * 1000);
    const parentId = opts.parentTokenId ?? null;
    const row = { id: jti, identityId: identity.id, kind: 'gateway', audience: GATEWAY_AUDIENCE, connection: connection.name, issuedAt: new Date(now * 1000), expiresAt, parentId, grantId: grant ?? null };
    if (grant) {
      // The grant is read again under a share lock with the row's insert: a revocation of it (which
      // updates the request, then revokes the credentials recorded under it, in one transaction) either
      // waits for this credential and revokes it too, or has committed and this one is never minted.
      const grantId = grant;
      await this.prisma.$transaction(async (tx) => {
        const [still] = await tx.$queryRaw<{ status: string; grantedUntil: Date | null }[]>`SELECT status, "grantedUntil" FROM "AccessRequest" WHERE id = ${grantId}::uuid FOR SHARE`;
        if (still?.status !== 'approved' || !still.grantedUntil || still.grantedUntil.getTime() <= Date.now()) {
          throw new ForbiddenError(`access grant ${grantId} for connection "${connection.name}" ${still?.status === 'revoked' ? 'was revoked' : 'has ended'}`, 'connection_not_allowed');
        }
        await tx.token.create({ data: row });
      });
    } else {
      await this.prisma.token.create({ data: row });
    }
    if (parentId) {
      // The parent may have been revoked between the caller's authentication and the row above; its
      // cascade would then have missed this credential. Look again after the write and never hand it out.
      const parent = await this.prisma.token.findUnique({ where: { id: parentId }, select: { revokedAt: true, revokedBy: true } });
      if (!parent || parent.revokedAt) {
        await this.prisma.token.update({ where: { id: jti }, data: { revokedAt: parent?.revokedAt ?? new Date(), revokedBy: parent?.revokedBy ?? 'cascade' } });
        this.publisher.requestPublish();
        throw new UnauthorizedError(`token ${parentId} has been revoked`, 'token_revoked');
      }
    }
    this.metrics.tokensIssued.inc({ kind: 'gateway' });
    await this.events.record({
      type: 'token.issued',
      actor: opts.actor ?? identity.subject,
      data: { action: 'issue', target: jti, after: { kind: 'gateway', identity: identity.subject, connection: connection.name, audience: GATEWAY_AUDIENCE, expiresAt: expiresAt.toISOString(), grant, amode: opts.mode } },
    });
    const { host, port, uri } = this.gatewayAddress(connection.kind, connection.name, { subject: identity.subject, token });
    return { token, expiresAt: expiresAt.toISOString(), host, port, database: connection.name, uri, jti, ...(grant ? { grant } : {}) };
  }

  /**
   * Where clients reach the gateway for a connection of `kind`, and the ready-made client string:
   * postgres `postgresql://<subject>:<token>@host:15432/<name>?sslmode=prefer`, ssh `ssh://<name>@host:2222`
   * (the token is the password, or the key id of a certificate), kubernetes `https://host:8443/k8s/<name>`
   * (the token is the bearer token).
   */
  gatewayAddress(kind: string, name: string, cred?: { subject: string; token: string }): { host: string; port: number; uri: string } {
    const { GATEWAY_PUBLIC_HOST: host, GATEWAY_PUBLIC_PORT: pgPort, GATEWAY_SSH_PUBLIC_PORT: sshPort, GATEWAY_KUBERNETES_PUBLIC_PORT: kubePort } = this.config.env;
    const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
    switch (kind) {
      case 'ssh':
        return { host, port: sshPort, uri: `ssh://${encodeURIComponent(name)}@${hostPart}:${sshPort}` };
      case 'kubernetes':
        return { host, port: kubePort, uri: `https://${hostPart}:${kubePort}/k8s/${encodeURIComponent(name)}` };
      default: {
        const userinfo = cred ? `${encodeURIComponent(cred.subject)}:${encodeURIComponent(cred.token)}@` : '';
        return { host, port: pgPort, uri: `postgresql://${userinfo}${hostPart}:${pgPort}/${encodeURIComponent(name)}?sslmode=prefer` };
      }
    }
  }

  /** Verifies an api token and returns who it is, with groups and roles as they are now in the DB. */
  async verifyApiToken(token: string): Promise<ApiPrincipal> {
    let payload: JWTPayload;
    try {
      // one spelling per token: jose would also take `token==` or `token ` (lenient base64url)
      assertCompactJws(token);
      const header = decodeProtectedHeader(token);
      if (header.alg !== TOKEN_ALG || typeof header.kid !== 'string') throw new UnauthorizedError('invalid token: unexpected header', 'invalid_token');
      const key = await this.keys.verificationKey(header.kid);
      if (!key) throw new UnauthorizedError('invalid token: unknown signing key', 'invalid_token');
      ({ payload } = await jwtVerify(token, key, {
        algorithms: [TOKEN_ALG],
        audience: API_AUDIENCE,
        issuer: this.config.env.PORTCULLIS_ISSUER,
        requiredClaims: ['exp', 'iat', 'jti', 'sub'],
      }));
    } catch (err) {
      if (err instanceof UnauthorizedError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new UnauthorizedError('token expired', 'token_expired', { cause: err });
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw new UnauthorizedError('invalid token: signature verification failed', 'invalid_token', { cause: err });
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw new UnauthorizedError(`invalid token: claim ${err.claim} ${err.reason}`, 'invalid_token', { cause: err });
      throw new UnauthorizedError('invalid token', 'invalid_token', { cause: err });
    }
    const claims = apiTokenClaimsSchema.safeParse(payload);
    if (!claims.success) throw new UnauthorizedError('invalid token: not an api token', 'invalid_token');
    const row = await this.prisma.token.findUnique({ where: { id: claims.data.jti } });
    if (!row || row.identityId !== claims.data.pid || row.kind !== 'api') throw new UnauthorizedError('invalid token: unknown token id', 'invalid_token');
    if (row.revokedAt) throw new UnauthorizedError(`token ${row.id} has been revoked`, 'token_revoked');
    const identity = await this.prisma.identity.findUnique({ where: { id: row.identityId }, include: { memberships: { include: { group: true } } } });
    if (!identity) throw new UnauthorizedError('invalid token: identity no longer exists', 'invalid_token');
    if (identity.disabled) throw new UnauthorizedError(`identity ${identity.subject} is disabled`, 'identity_disabled');
    const groups = identity.memberships.map((m) => m.group);
    return {
      identityId: identity.id,
      subject: identity.subject,
      kind: identity.kind,
      groups: groups.map((g) => g.name).sort(),
      roles: rolesOf(groups),
      tokenId: row.id,
    };
  }

  /** Revokes a token by id (idempotent) and republishes snapshots so gateways refuse it. */
  async revoke(jti: string, by: string): Promise<RevokedToken> {
    const row = await this.prisma.token.findUnique({ where: { id: jti }, include: { identity: { select: { subject: true } } } });
    if (!row) throw new NotFoundError(`token ${jti} does not exist`, 'token_not_found');
    if (row.revokedAt) return { jti, revokedAt: row.revokedAt.toISOString(), revokedBy: row.revokedBy ?? 'unknown', alreadyRevoked: true };
    const revokedAt = new Date();
    // Conditional update: two concurrent revocations record one revoker.
    const { count } = await this.prisma.token.updateMany({ where: { id: jti, revokedAt: null }, data: { revokedAt, revokedBy: by } });
    if (!count) return this.revoke(jti, by);
    // Credentials minted with this token fall with it: a stolen api token must not leave live gateway
    // credentials behind. They join the snapshot's revocation list, which also ends their open sessions.
    const children = await this.prisma.token.findMany({ where: { parentId: jti, revokedAt: null, expiresAt: { gt: revokedAt } }, select: { id: true } });
    if (children.length) await this.prisma.token.updateMany({ where: { id: { in: children.map((c) => c.id) }, revokedAt: null }, data: { revokedAt, revokedBy: by } });
    this.publisher.requestPublish();
    await this.events.record({
      type: 'token.revoked',
      actor: by,
      data: { action: 'revoke', target: jti, before: { revokedAt: null }, after: { kind: row.kind, identity: row.identity.subject, connection: row.connection, revokedAt: revokedAt.toISOString(), ...(children.length ? { cascaded: children.map((c) => c.id) } : {}) } },
    });
    return { jti, revokedAt: revokedAt.toISOString(), revokedBy: by, alreadyRevoked: false };
  }

  /** Revocation on behalf of a caller: the token's owner or an admin. */
  async revokeAs(jti: string, principal: ApiPrincipal): Promise<RevokedToken> {
    const row = await this.prisma.token.findUnique({ where: { id: jti }, select: { identityId: true } });
    const owner = row && principal.identityId !== null && row.identityId === principal.identityId;
    if (!owner && !hasRole(principal, 'admin')) {
      // Same answer for "not yours" and "does not exist": token ids are not an oracle.
      throw new ForbiddenError(`only the owner of token ${jti} or an admin may revoke it`, 'forbidden');
    }
    return this.revoke(jti, principal.subject);
  }

  /** Revokes every unexpired token of an identity (on disable). Returns how many. */
  async revokeAllOf(identityId: string, by: string): Promise<number> {
    const { count } = await this.prisma.token.updateMany({
      where: { identityId, revokedAt: null, expiresAt: { gt: new Date() } },
      data: { revokedAt: new Date(), revokedBy: by },
    });
    if (count) this.publisher.requestPublish();
    return count;
  }

  /**
   * An identity lost a group (removed from it, the group deleted, its groups replaced, an IdP login
   * without it): its unexpired gateway credentials are revoked. A credential states its holder's
   * groups as they were when it was minted (claim `groups`, which gateways check against a
   * connection's allowedGroups and policies read), so it must not outlive them; the revocation list
   * also ends the sessions opened with them. The holder asks for new credentials under the groups it
   * has now. Returns the revoked ids.
   */
  async revokeOnGroupLoss(identityIds: readonly string[], by: string, groups: readonly string[]): Promise<string[]> {
    if (identityIds.length === 0) return [];
    const revokedAt = new Date();
    const rows = await this.prisma.token.findMany({
      where: { identityId: { in: [...identityIds] }, kind: 'gateway', revokedAt: null, expiresAt: { gt: revokedAt } },
      select: { id: true, identityId: true, connection: true, identity: { select: { subject: true } } },
    });
    if (rows.length === 0) return [];
    await this.prisma.token.updateMany({ where: { id: { in: rows.map((r) => r.id) }, revokedAt: null }, data: { revokedAt, revokedBy: by } });
    this.publisher.requestPublish();
    for (const r of rows) {
      await this.events.record({
        type: 'token.revoked',
        actor: by,
        data: { action: 'revoke', target: r.id, before: { revokedAt: null }, after: { kind: 'gateway', identity: r.identity.subject, connection: r.connection, revokedAt: revokedAt.toISOString(), reason: 'group_removed', groups: [...groups] } },
      });
    }
    return rows.map((r) => r.id);
  }

  /** Compact JWS (EdDSA, active key, `kid` in the header) over a JSON payload — e.g. signed approval decisions. */
  async signJws(payload: Record<string, unknown>): Promise<string> {
    const { kid, privateKey } = this.keys.activeKey;
    return new CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader({ alg: TOKEN_ALG, kid }).sign(privateKey);
  }

  /** Public JWKs that verify everything this api signs. */
  publicJwks(): PublicJwk[] {
    return this.keys.publicJwks();
  }

  private async sign(claims: object, std: { sub: string; jti: string; aud: string; iat: number; exp: number }): Promise<string> {
    const { kid, privateKey } = this.keys.activeKey;
    return new SignJWT({ ...claims })
      .setProtectedHeader({ alg: TOKEN_ALG, kid, typ: 'JWT' })
      .setIssuer(this.config.env.PORTCULLIS_ISSUER)
      .setSubject(std.sub)
      .setAudience(std.aud)
      .setJti(std.jti)
      .setIssuedAt(std.iat)
      .setExpirationTime(std.exp)
      .sign(privateKey);
  }

  private async loadIdentity(identityId: string) {
    if (!isUuid(identityId)) throw new NotFoundError(`identity ${identityId} does not exist`, 'identity_not_found');
    const identity = await this.prisma.identity.findUnique({ where: { id: identityId }, include: { memberships: { include: { group: true } } } });
    if (!identity) throw new NotFoundError(`identity ${identityId} does not exist`, 'identity_not_found');
    if (identity.disabled) throw new IdentityDisabledError(identity.subject);
    return identity;
  }
}
