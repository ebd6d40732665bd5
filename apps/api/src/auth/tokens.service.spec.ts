import { describe, expect, it } from 'vitest';
import { rolesOf } from './tokens.service.js';
import { hasRole, type ApiPrincipal } from './principal.js';

describe('roles', () => {
  it.each([
    { groups: [], roles: [] },
    { groups: [{ roles: ['user'] }], roles: ['user'] },
    { groups: [{ roles: ['user', 'approver'] }, { roles: ['admin'] }], roles: ['admin', 'approver', 'user'] },
    { groups: [{ roles: ['root', 'superuser', 'auditor'] }], roles: ['auditor'] },
    { groups: [{ roles: ['user'] }, { roles: ['user'] }], roles: ['user'] },
  ])('rolesOf($groups) = $roles (unknown role strings are never trusted)', ({ groups, roles }) => {
    expect(rolesOf(groups)).toEqual(roles);
  });

  const p = (roles: ApiPrincipal['roles']): ApiPrincipal => ({ identityId: 'x', subject: 's', kind: 'person', groups: [], roles, tokenId: 't' });
  it('admin passes every role check; others need the role', () => {
    expect(hasRole(p(['admin']), 'auditor')).toBe(true);
    expect(hasRole(p(['approver']), 'approver')).toBe(true);
    expect(hasRole(p(['user']), 'approver', 'auditor')).toBe(false);
    expect(hasRole(p([]), 'user')).toBe(false);
  });
});
