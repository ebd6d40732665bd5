import type { Role } from '@portcullis/protocol';

/** Who is calling: set on the request by the global AuthGuard. */
export interface ApiPrincipal {
  /** Identity row id; null for the bootstrap token. */
  identityId: string | null;
  subject: string;
  kind: 'person' | 'agent' | 'bootstrap';
  groups: string[];
  roles: Role[];
  /** jti of the api token used; null for the bootstrap token. */
  tokenId: string | null;
}

export function hasRole(principal: ApiPrincipal, ...roles: Role[]): boolean {
  return principal.roles.includes('admin') || roles.some((r) => principal.roles.includes(r));
}

export const BOOTSTRAP_SUBJECT = 'bootstrap';
