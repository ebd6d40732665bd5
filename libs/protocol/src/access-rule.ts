import type { GatewayTokenClaims } from './tokens.js';

/**
 * Who may use a connection — the one rule the api (issuing a gateway credential) and the gateway
 * (admitting a login, and re-checking every live session on each config change) both apply.
 */

/** A time-boxed access grant: an approved access request for this identity and connection. */
export interface AccessGrant {
  /** the access request's id */
  id: string;
  /** when the grant ends, epoch ms */
  until: number;
  /** an approver revoked it before `until` (POST /v1/access-requests/{id}/revoke): it is over */
  revoked?: boolean;
}

export interface AccessCaller {
  groups: readonly string[];
  /** grants the caller holds for this connection (any order; expired ones are ignored) */
  grants: readonly AccessGrant[];
}

export type AccessDecision =
  | { allowed: true; via: 'group'; group: string }
  /** the longest-running live grant */
  | { allowed: true; via: 'grant'; grant: AccessGrant }
  | { allowed: false; reason: 'no_allowed_group' | 'grant_expired' | 'grant_revoked' };

/**
 * One of the caller's groups is in the connection's allowedGroups, or a grant is still running at
 * `now` and was not revoked. Group membership wins over a grant (a group never ends by itself; a grant
 * does). Refused with grant_revoked when a grant the caller held would still run but was revoked.
 */
export function mayUseConnection(caller: AccessCaller, connection: { allowedGroups: readonly string[] }, now: number): AccessDecision {
  const group = caller.groups.find((g) => connection.allowedGroups.includes(g));
  if (group !== undefined) return { allowed: true, via: 'group', group };
  let best: AccessGrant | null = null;
  let revoked = false;
  for (const g of caller.grants) {
    if (g.until <= now) continue;
    if (g.revoked) revoked = true;
    else if (!best || g.until > best.until) best = g;
  }
  if (best) return { allowed: true, via: 'grant', grant: best };
  if (revoked) return { allowed: false, reason: 'grant_revoked' };
  return { allowed: false, reason: caller.grants.length ? 'grant_expired' : 'no_allowed_group' };
}

/**
 * The caller as a gateway credential presents it: its groups, and the access grant it rests on.
 * A grant claim without its end (credentials minted before `gexp` existed) ends with the credential
 * (`expiresAt`, epoch ms; null: already over). `revokedGrants`: ids of access requests revoked before
 * their end (the config snapshot's `revokedGrants`).
 */
export function accessCallerOf(
  claims: Pick<GatewayTokenClaims, 'groups' | 'grant' | 'gexp'>,
  expiresAt: number | null,
  revokedGrants?: ReadonlySet<string>,
): AccessCaller {
  if (claims.grant === undefined) return { groups: claims.groups, grants: [] };
  const until = claims.gexp !== undefined ? claims.gexp * 1000 : (expiresAt ?? 0);
  return { groups: claims.groups, grants: [{ id: claims.grant, until, ...(revokedGrants?.has(claims.grant) ? { revoked: true } : {}) }] };
}

/**
 * mayUseConnection for the holder of a gateway credential: the api issued it under this rule, and the
 * gateway asks it again at every login (and on every config change for live sessions).
 */
export function credentialAllows(
  claims: Pick<GatewayTokenClaims, 'groups' | 'grant' | 'gexp'>,
  connection: { allowedGroups: readonly string[] },
  at: { expiresAt: number | null; now?: number; revokedGrants?: ReadonlySet<string> },
): AccessDecision {
  return mayUseConnection(accessCallerOf(claims, at.expiresAt, at.revokedGrants), connection, at.now ?? Date.now());
}
