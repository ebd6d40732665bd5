import { Module } from '@nestjs/common';
import { ApprovalIntakeService } from './approval-intake.service.js';
import { ApprovalsController } from './approvals.controller.js';
import { ApprovalsService } from './approvals.service.js';

@Module({ controllers: [ApprovalsController], providers: [ApprovalsService, ApprovalIntakeService], exports: [ApprovalsService] })
export class ApprovalsModule {}
