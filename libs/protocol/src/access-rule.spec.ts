import { describe, expect, it } from 'vitest';
import { accessCallerOf, credentialAllows, mayUseConnection, type AccessCaller, type AccessDecision } from './access-rule.js';

const now = 1_000_000;
const conn = { allowedGroups: ['engineers', 'dba'] };
const live = { id: 'ar-live', until: now + 60_000 };
const later = { id: 'ar-later', until: now + 120_000 };
const ended = { id: 'ar-ended', until: now - 1 };
const endsNow = { id: 'ar-now', until: now };

const revoked = { id: 'ar-revoked', until: now + 60_000, revoked: true };

const rows: { name: string; caller: AccessCaller; expected: AccessDecision }[] = [
  { name: 'a revoked grant that would still run admits nothing', caller: { groups: [], grants: [revoked] }, expected: { allowed: false, reason: 'grant_revoked' } },
  { name: 'a revoked grant beside a live one: the live one is used', caller: { groups: [], grants: [{ ...revoked, until: later.until }, live] }, expected: { allowed: true, via: 'grant', grant: live } },
  { name: 'group membership wins over a revoked grant', caller: { groups: ['engineers'], grants: [revoked] }, expected: { allowed: true, via: 'group', group: 'engineers' } },
  { name: 'a revoked grant that has ended anyway reads as expired', caller: { groups: [], grants: [{ ...ended, revoked: true }] }, expected: { allowed: false, reason: 'grant_expired' } },
  { name: 'a grant that ends exactly now no longer counts', caller: { groups: [], grants: [endsNow] }, expected: { allowed: false, reason: 'grant_expired' } },
  { name: 'group membership wins over a grant', caller: { groups: ['dba'], grants: [live] }, expected: { allowed: true, via: 'group', group: 'dba' } },
  { name: 'the longest-running live grant is the one used', caller: { groups: ['sales'], grants: [ended, live, later] }, expected: { allowed: true, via: 'grant', grant: later } },
  { name: 'only expired grants', caller: { groups: ['sales'], grants: [ended] }, expected: { allowed: false, reason: 'grant_expired' } },
  { name: 'group names match exactly (no prefix, no case folding)', caller: { groups: ['Engineers', 'engineer'], grants: [] }, expected: { allowed: false, reason: 'no_allowed_group' } },
  { name: 'no groups, no grants', caller: { groups: [], grants: [] }, expected: { allowed: false, reason: 'no_allowed_group' } },
  { name: 'an allowed group', caller: { groups: ['sales', 'engineers'], grants: [] }, expected: { allowed: true, via: 'group', group: 'engineers' } },
];

describe('mayUseConnection', () => {
  it.each(rows)('$name', ({ caller, expected }) => {
    expect(mayUseConnection(caller, conn, now)).toEqual(expected);
  });

  it('a connection that allows no group admits grants only', () => {
    expect(mayUseConnection({ groups: ['admins'], grants: [] }, { allowedGroups: [] }, now)).toEqual({ allowed: false, reason: 'no_allowed_group' });
    expect(mayUseConnection({ groups: ['admins'], grants: [live] }, { allowedGroups: [] }, now)).toMatchObject({ allowed: true, via: 'grant' });
  });
});

describe('credentialAllows (the rule applied to a gateway credential)', () => {
  const claims = { groups: ['sales'] };
  const rows = [
    { name: 'a grant claim with its end (gexp, seconds) runs until then', claims: { ...claims, grant: 'ar-1', gexp: (now + 1000) / 1000 }, expiresAt: now - 5, allowed: true },
    { name: 'a grant claim whose gexp has passed no longer admits', claims: { ...claims, grant: 'ar-1', gexp: (now - 1000) / 1000 }, expiresAt: now + 60_000, allowed: false },
    { name: 'a grant claim without gexp ends with the credential', claims: { ...claims, grant: 'ar-1' }, expiresAt: now + 1, allowed: true },
    { name: 'a grant claim without gexp and without an expiry is over', claims: { ...claims, grant: 'ar-1' }, expiresAt: null, allowed: false },
    { name: 'an allowed group needs no grant', claims: { groups: ['dba'] }, expiresAt: null, allowed: true },
    { name: 'no allowed group and no grant', claims, expiresAt: now + 60_000, allowed: false },
    { name: 'a grant claim whose access request was revoked no longer admits', claims: { ...claims, grant: 'ar-gone', gexp: (now + 1000) / 1000 }, expiresAt: now + 60_000, allowed: false },
  ];
  it.each(rows)('$name', ({ claims: c, expiresAt, allowed }) => {
    expect(credentialAllows(c, conn, { expiresAt, now, revokedGrants: new Set(['ar-gone']) }).allowed).toBe(allowed);
  });

  it('reads the caller as accessCallerOf does', () => {
    expect(accessCallerOf({ groups: ['a'], grant: 'ar-9', gexp: 7 }, null)).toEqual({ groups: ['a'], grants: [{ id: 'ar-9', until: 7000 }] });
    expect(accessCallerOf({ groups: ['a'] }, 5)).toEqual({ groups: ['a'], grants: [] });
    expect(accessCallerOf({ groups: ['a'], grant: 'ar-9', gexp: 7 }, null, new Set(['ar-9']))).toEqual({ groups: ['a'], grants: [{ id: 'ar-9', until: 7000, revoked: true }] });
  });
});
