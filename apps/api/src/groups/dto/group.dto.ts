import { z } from 'zod';
import { ROLES } from '@portcullis/protocol';
import { groupName, subjectName } from '../../common/names.js';

const roles = z.array(z.enum(ROLES)).max(ROLES.length);
const idpGroups = z.array(z.string().min(1).max(200)).max(100);

export const createGroupSchema = z.strictObject({
  name: groupName,
  description: z.string().max(500).nullable().optional(),
  /** default: ["user"] */
  roles: roles.optional(),
  /** IdP group claim values that map onto this group at login */
  idpGroups: idpGroups.optional(),
});
export type CreateGroup = z.infer<typeof createGroupSchema>;

export const updateGroupSchema = z.strictObject({
  description: z.string().max(500).nullable().optional(),
  roles: roles.optional(),
  idpGroups: idpGroups.optional(),
});
export type UpdateGroup = z.infer<typeof updateGroupSchema>;

export const setMembersSchema = z.strictObject({
  /** subjects; replaces the group's manual members (IdP/trust memberships stay) */
  members: z.array(subjectName).max(10_000),
});
export type SetMembers = z.infer<typeof setMembersSchema>;

export const groupViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  roles: z.array(z.string()),
  idpGroups: z.array(z.string()),
  members: z.array(z.object({ subject: z.string(), kind: z.string(), source: z.string() })),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type GroupView = z.infer<typeof groupViewSchema>;
