import { isDeepStrictEqual } from 'node:util';
import { mayUseConnection, type AccessCaller } from '@portcullis/protocol';
import type { ActiveConfig, ResolvedPolicy } from '../config/config-store.js';

/** What a live session is, as far as a new config is concerned. */
export interface LiveSessionFacts {
  /** the gateway credential's id (`jti`) */
  tokenId: string;
  connection: string;
  /** who the credential says the caller is: its groups and the access grant it rests on */
  caller: AccessCaller;
  /** the policy the session applies now */
  policy: ResolvedPolicy | null;
  /**
   * the session acts later on decisions made earlier without deciding again (Postgres: named prepared
   * statements, allowed once and executed later)
   */
  holdsEarlierDecisions: boolean;
}

/** What a new config means for one live session. */
export type LiveConfigVerdict =
  | { kind: 'keep' }
  /** a newer version of the same policy whose masking and approval rules are unchanged: decide the next statements by it */
  | { kind: 'adopt'; policy: ResolvedPolicy }
  /** end the session: the client is told `message` (each protocol its way: LiveSession.end), session.end with `reason` */
  | { kind: 'end'; message: string; reason: string };

/**
 * Reviews a live session against a config that arrived after it started. A session must not outlive
 * what allowed it: a revoked credential, a removed connection, a lost right to the connection (its
 * group no longer allowed, its access grant over), or a policy the gateway no longer has
 * ends it at once (fail closed). A new version of its policy is adopted in place when only guardrails
 * (or dynamicSql) changed; when masking, approval, result recording or row-count rules changed the session ends, since its result
 * plans and held statements follow the rules it began with, and so does a session holding prepared
 * statements (their executions are not decided again).
 */
export function reviewLiveSession(s: LiveSessionFacts, config: ActiveConfig, now = Date.now()): LiveConfigVerdict {
  if (config.revoked.has(s.tokenId)) {
    return { kind: 'end', message: 'terminating connection: the gateway credential of this session was revoked', reason: 'credential_revoked' };
  }
  const conn = config.connections.get(s.connection);
  if (!conn) {
    return { kind: 'end', message: `terminating connection: connection "${s.connection}" was removed or disabled`, reason: 'connection_removed' };
  }
  // The rule that admitted the login, asked again: a group removed from allowedGroups, or an access
  // grant that ran out, ends the session like a revoked credential does.
  const access = mayUseConnection(s.caller, conn, now);
  if (!access.allowed) {
    return {
      kind: 'end', reason: 'access_removed',
      message: access.reason === 'grant_expired'
        ? `terminating connection: the access grant for connection "${s.connection}" has expired`
        : access.reason === 'grant_revoked'
          ? `terminating connection: the access grant for connection "${s.connection}" (access request ${s.caller.grants[0]?.id ?? '?'}) was revoked`
          : `terminating connection: this session's groups are no longer allowed to use connection "${s.connection}"`,
    };
  }
  const name = conn.policy ?? null;
  const before = s.policy;
  if (name !== (before?.name ?? null)) {
    return {
      kind: 'end', reason: 'policy_changed',
      message: `terminating connection: connection "${s.connection}" now uses ${name === null ? 'no policy' : `policy "${name}"`}; reconnect to continue under it`,
    };
  }
  if (name === null || before === null) return { kind: 'keep' };
  const next = config.policies.get(name);
  if (!next) {
    const why = config.brokenPolicies.get(name);
    return {
      kind: 'end', reason: 'policy_unavailable',
      message: `terminating connection: policy "${name}" is no longer available on this gateway${why ? ' (its new version is invalid)' : ''}`,
    };
  }
  if (next === before || next.version === before.version) return { kind: 'keep' };
  // Masking, approval, result recording and row-count (consequence) rules shape how a session's
  // bytes move from its start (result plans, the native fast lane only for sessions that need none of
  // them, measured writes), so a change to any of them ends it rather than being adopted half-way.
  if (
    !sameSection(before.document, next.document, 'masking') ||
    !sameSection(before.document, next.document, 'approval') ||
    !sameSection(before.document, next.document, 'recording') ||
    !isDeepStrictEqual(consequenceRules(before.document), consequenceRules(next.document))
  ) {
    return {
      kind: 'end', reason: 'policy_changed',
      message: `terminating connection: policy "${name}" changed its masking, approval, result recording or row-count rules (version ${before.version} → ${next.version}); reconnect to continue under them`,
    };
  }
  if (s.holdsEarlierDecisions) {
    return {
      kind: 'end', reason: 'policy_changed',
      message: `terminating connection: policy "${name}" changed (version ${before.version} → ${next.version}) and this session holds prepared statements the previous version allowed; reconnect to continue under the new one`,
    };
  }
  return { kind: 'adopt', policy: next };
}

/** The guardrails that measure writes (`match.rowsAffectedOver`), as the document states them. */
function consequenceRules(doc: unknown): unknown[] {
  const guardrails = (doc as { guardrails?: unknown } | null)?.guardrails;
  if (!Array.isArray(guardrails)) return [];
  return guardrails.filter((g) => (g as { match?: { rowsAffectedOver?: unknown } } | null)?.match?.rowsAffectedOver !== undefined);
}

function sameSection(a: unknown, b: unknown, key: 'masking' | 'approval' | 'recording'): boolean {
  return isDeepStrictEqual((a as Record<string, unknown> | null)?.[key] ?? null, (b as Record<string, unknown> | null)?.[key] ?? null);
}
