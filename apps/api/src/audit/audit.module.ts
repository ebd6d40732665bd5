import { Module } from '@nestjs/common';
import { AuditController } from './audit.controller.js';
import { AuditExportService } from './audit-export.service.js';

@Module({ controllers: [AuditController], providers: [AuditExportService], exports: [AuditExportService] })
export class AuditModule {}
