import { z } from 'zod';
import { groupName, subjectName } from '../../common/names.js';

export const createIdentitySchema = z.strictObject({
  kind: z.enum(['person', 'agent']),
  subject: subjectName,
  displayName: z.string().max(200).nullable().optional(),
  email: z.email().nullable().optional(),
  disabled: z.boolean().optional(),
  /** groups joined manually (source `manual`) */
  groups: z.array(groupName).max(200).optional(),
});
export type CreateIdentity = z.infer<typeof createIdentitySchema>;

export const updateIdentitySchema = z.strictObject({
  displayName: z.string().max(200).nullable().optional(),
  email: z.email().nullable().optional(),
  /** disabling revokes every unexpired token of the identity */
  disabled: z.boolean().optional(),
  /** replaces the manual memberships (idp/trust memberships are kept) */
  groups: z.array(groupName).max(200).optional(),
});
export type UpdateIdentity = z.infer<typeof updateIdentitySchema>;

export const identityViewSchema = z.object({
  id: z.string(),
  kind: z.enum(['person', 'agent']),
  subject: z.string(),
  displayName: z.string().nullable(),
  email: z.string().nullable(),
  issuer: z.string().nullable(),
  disabled: z.boolean(),
  groups: z.array(z.string()),
  memberships: z.array(z.object({ group: z.string(), source: z.string() })),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type IdentityView = z.infer<typeof identityViewSchema>;
