import { describe, expect, it } from 'vitest';
import type { ActiveConfig, ResolvedConnection, ResolvedPolicy } from '../config/config-store.js';
import { reviewLiveSession, type LiveSessionFacts } from './live-config.js';

const engine = { evaluate: () => ({ action: 'allow' as const, rule: null, reason: null }) };
const masking = [{ name: 'emails', columns: ['email'], strategy: 'partial' }];
const approval = { approvers: ['approvers'], timeoutSeconds: 300 };
function policy(version: number, doc: Record<string, unknown> = {}): ResolvedPolicy {
  return { name: 'p', version, engine, masks: true, document: { name: 'p', guardrails: [], masking, approval, ...doc } };
}
const v1 = policy(1);

function config(o: { revoked?: string[]; connections?: Record<string, string | null>; allowedGroups?: string[]; policies?: ResolvedPolicy[]; broken?: string[] } = {}): ActiveConfig {
  const connections = new Map<string, ResolvedConnection>();
  for (const [name, p] of Object.entries(o.connections ?? { db: 'p' })) {
    connections.set(name, { name, policy: p, allowedGroups: o.allowedGroups ?? ['engineers'] } as unknown as ResolvedConnection);
  }
  return {
    revoked: new Set(o.revoked ?? []),
    connections,
    policies: new Map((o.policies ?? [v1]).map((p) => [p.name, p])),
    brokenPolicies: new Map((o.broken ?? []).map((n) => [n, 'invalid'])),
  } as unknown as ActiveConfig;
}
const session: LiveSessionFacts = { tokenId: 'tok-1', connection: 'db', caller: { groups: ['engineers'], grants: [] }, policy: v1, holdsEarlierDecisions: false };
const NOW = 1_800_000_000_000;
const granted = (until: number): LiveSessionFacts => ({ ...session, caller: { groups: ['sales'], grants: [{ id: 'ar-1', until }] } });

// [name, session, config, expected kind, expected reason (end) or adopted version]
const rows: [string, LiveSessionFacts, ActiveConfig, string, string | number | null][] = [
  ['nothing that concerns it changed', session, config({ revoked: ['someone-else'] }), 'keep', null],
  ['its credential was revoked', session, config({ revoked: ['tok-1'] }), 'end', 'credential_revoked'],
  ['revocation wins over a policy change', session, config({ revoked: ['tok-1'], policies: [policy(2)] }), 'end', 'credential_revoked'],
  ['its group was removed from allowedGroups', session, config({ allowedGroups: ['dba'] }), 'end', 'access_removed'],
  ['revocation wins over a removed group', session, config({ revoked: ['tok-1'], allowedGroups: [] }), 'end', 'credential_revoked'],
  ['a removed group ends it before a policy change is looked at', session, config({ allowedGroups: [], policies: [policy(2)] }), 'end', 'access_removed'],
  ['one of its groups is still allowed', { ...session, caller: { groups: ['dba', 'engineers'], grants: [] } }, config({ allowedGroups: ['dba'] }), 'keep', null],
  ['its access grant runs on', granted(NOW + 1000), config({ allowedGroups: ['dba'] }), 'keep', null],
  ['its access grant ended', granted(NOW), config({ allowedGroups: ['dba'] }), 'end', 'access_removed'],
  ['its access grant was revoked before its end', { ...session, caller: { groups: ['sales'], grants: [{ id: 'ar-1', until: NOW + 60_000, revoked: true }] } }, config({ allowedGroups: ['dba'] }), 'end', 'access_removed'],
  ['its connection was removed', session, config({ connections: { other: 'p' } }), 'end', 'connection_removed'],
  ['its connection moved to another policy', session, config({ connections: { db: 'q' } }), 'end', 'policy_changed'],
  ['its connection dropped its policy', session, config({ connections: { db: null } }), 'end', 'policy_changed'],
  ['a connection without a policy got one', { ...session, policy: null }, config(), 'end', 'policy_changed'],
  ['a connection without a policy still has none', { ...session, policy: null }, config({ connections: { db: null } }), 'keep', null],
  ['its policy is gone', session, config({ policies: [] }), 'end', 'policy_unavailable'],
  ['the new version of its policy is invalid', session, config({ policies: [], broken: ['p'] }), 'end', 'policy_unavailable'],
  ['same version', session, config({ policies: [policy(1, { guardrails: [{ name: 'x' }] })] }), 'keep', null],
  ['a new version with new guardrails only', session, config({ policies: [policy(2, { guardrails: [{ name: 'no-drop' }], dynamicSql: 'allow' })] }), 'adopt', 2],
  ['a new version with new guardrails, but the session holds prepared statements', { ...session, holdsEarlierDecisions: true }, config({ policies: [policy(2, { guardrails: [{ name: 'no-drop' }] })] }), 'end', 'policy_changed'],
  ['same version while holding prepared statements', { ...session, holdsEarlierDecisions: true }, config(), 'keep', null],
  ['a new version with other masking', session, config({ policies: [policy(2, { masking: [{ ...masking[0], strategy: 'redact' }] })] }), 'end', 'policy_changed'],
  ['a new version without masking', session, config({ policies: [policy(2, { masking: [] })] }), 'end', 'policy_changed'],
  ['a new version with other approvers', session, config({ policies: [policy(2, { approval: { ...approval, approvers: ['admins'] } })] }), 'end', 'policy_changed'],
  // a session relayed by the native fast lane cannot start keeping rows or measuring writes half-way
  ['a new version that keeps result rows', session, config({ policies: [policy(2, { recording: { results: { rows: 20, bytes: 65536 } } })] }), 'end', 'policy_changed'],
  ['a new version with a row-count rule', session, config({ policies: [policy(2, { guardrails: [{ name: 'big', action: 'require_approval', match: { statements: ['DELETE'], rowsAffectedOver: 10 } }] })] }), 'end', 'policy_changed'],
  ['a new version whose row-count rule moved its threshold', { ...session, policy: policy(1, { guardrails: [{ name: 'big', action: 'require_approval', match: { statements: ['DELETE'], rowsAffectedOver: 10 } }] }) }, config({ policies: [policy(2, { guardrails: [{ name: 'big', action: 'require_approval', match: { statements: ['DELETE'], rowsAffectedOver: 100 } }] })] }), 'end', 'policy_changed'],
  ['a new version that only adds an ordinary guardrail beside a row-count rule', { ...session, policy: policy(1, { guardrails: [{ name: 'big', action: 'require_approval', match: { statements: ['DELETE'], rowsAffectedOver: 10 } }] }) }, config({ policies: [policy(2, { guardrails: [{ name: 'big', action: 'require_approval', match: { statements: ['DELETE'], rowsAffectedOver: 10 } }, { name: 'no-drop' }] })] }), 'adopt', 2],
];

describe('reviewLiveSession', () => {
  it.each(rows)('%s', (_name, s, c, kind, detail) => {
    const v = reviewLiveSession(s, c, NOW);
    expect(v.kind).toBe(kind);
    if (v.kind === 'end') {
      expect(v.reason).toBe(detail);
      expect(v.message).toMatch(/^terminating connection: /);
    }
    if (v.kind === 'adopt') expect(v.policy.version).toBe(detail);
  });
});

describe('a revoked access grant', () => {
  it('ends its session with a message that says so, naming the access request', () => {
    const v = reviewLiveSession({ ...session, caller: { groups: ['sales'], grants: [{ id: 'ar-7', until: NOW + 60_000, revoked: true }] } }, config({ allowedGroups: ['dba'] }), NOW);
    expect(v).toMatchObject({ kind: 'end', reason: 'access_removed', message: 'terminating connection: the access grant for connection "db" (access request ar-7) was revoked' });
  });
});
