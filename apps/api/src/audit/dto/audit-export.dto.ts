import { z } from 'zod';

export const EXPORT_FORMATS = ['jsonl', 'ocsf', 'cef'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const auditExportQuerySchema = z.strictObject({
  /** opaque, from a previous response's X-Next-Cursor; absent = from the oldest event */
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(5000).default(500),
  format: z.enum(EXPORT_FORMATS).default('jsonl'),
});
export type AuditExportQuery = z.infer<typeof auditExportQuerySchema>;
