import { Controller, Get, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Roles } from '../auth/decorators.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { AuditExportService } from './audit-export.service.js';
import { auditExportQuerySchema, type AuditExportQuery } from './dto/audit-export.dto.js';

/** SIEM pull: auditors (SIEM tokens carry the auditor role) and admins; read-only. */
@ApiTags('audit')
@ApiBearerAuth()
@Roles('auditor')
@Controller('v1/audit')
export class AuditController {
  constructor(private readonly exporter: AuditExportService) {}

  @Get('events')
  @ApiOkResponse({ description: 'one event per line (jsonl, ocsf) or CEF lines; resume with the X-Next-Cursor header' })
  async events(@Query(new ZodValidationPipe(auditExportQuerySchema, 'query')) q: AuditExportQuery, @Res({ passthrough: true }) res: Response): Promise<string> {
    const page = await this.exporter.page(q);
    res.setHeader('Content-Type', page.contentType);
    res.setHeader('X-Next-Cursor', page.nextCursor);
    res.setHeader('X-Event-Count', String(page.count));
    res.setHeader('Cache-Control', 'no-store');
    return page.body;
  }
}
