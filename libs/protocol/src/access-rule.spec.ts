import { describe, expect, it } from 'vitest';
import { mayUseConnection, type AccessCaller, type AccessDecision } from './access-rule.js';

const now = 1_000_000;
const conn = { allowedGroups: ['engineers', 'dba'] };
const live = { id: 'ar-live', until: now + 60_000 };
const later = { id: 'ar-later', until: now + 120_000 };
const ended = { id: 'ar-ended', until: now - 1 };
const endsNow = { id: 'ar-now', until: now };

const rows: { name: string; caller: AccessCaller; expected: AccessDecision }[] = [
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
