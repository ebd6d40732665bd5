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
  | { allowed: false; reason: 'no_allowed_group' | 'grant_expired' };

/**
 * One of the caller's groups is in the connection's allowedGroups, or a grant is still running at
 * `now`. Group membership wins over a grant (a group never ends by itself; a grant does).
 */
export function mayUseConnection(caller: AccessCaller, connection: { allowedGroups: readonly string[] }, now: number): AccessDecision {
  const group = caller.groups.find((g) => connection.allowedGroups.includes(g));
  if (group !== undefined) return { allowed: true, via: 'group', group };
  let best: AccessGrant | null = null;
  for (const g of caller.grants) if (g.until > now && (!best || g.until > best.until)) best = g;
  if (best) return { allowed: true, via: 'grant', grant: best };
  return { allowed: false, reason: caller.grants.length ? 'grant_expired' : 'no_allowed_group' };
}
