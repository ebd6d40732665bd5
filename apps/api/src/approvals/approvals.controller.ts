import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { ApiZodBody, ApiZodResponse } from '../common/openapi.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { CurrentPrincipal } from '../auth/decorators.js';
import type { ApiPrincipal } from '../auth/principal.js';
import { ApprovalsService } from './approvals.service.js';
import {
  approvalViewSchema, decideApprovalSchema, listApprovalsQuerySchema,
  type ApprovalView, type DecideApproval, type ListApprovalsQuery,
} from './dto/approval.dto.js';

/**
 * Held statements. Approvers, auditors and admins see all; anyone else sees their own requests.
 * Deciding needs membership of the approval's approver groups (or admin) and is never open to the requester.
 */
@ApiTags('approvals')
@ApiBearerAuth()
@Controller('v1/approvals')
export class ApprovalsController {
  constructor(private readonly approvals: ApprovalsService) {}

  @Get()
  @ApiZodResponse(z.array(approvalViewSchema))
  list(@Query(new ZodValidationPipe(listApprovalsQuerySchema, 'query')) q: ListApprovalsQuery, @CurrentPrincipal() p: ApiPrincipal): Promise<ApprovalView[]> {
    return this.approvals.list(q, p);
  }

  @Get(':id')
  @ApiZodResponse(approvalViewSchema)
  get(@Param('id') id: string, @CurrentPrincipal() p: ApiPrincipal): Promise<ApprovalView> {
    return this.approvals.get(id, p);
  }

  @Post(':id/approve')
  @HttpCode(200)
  @ApiZodBody(decideApprovalSchema)
  @ApiZodResponse(approvalViewSchema)
  approve(@Param('id') id: string, @Body(new ZodValidationPipe(decideApprovalSchema)) body: DecideApproval, @CurrentPrincipal() p: ApiPrincipal): Promise<ApprovalView> {
    return this.approvals.decide(id, 'approved', body.comment ?? null, p);
  }

  @Post(':id/deny')
  @HttpCode(200)
  @ApiZodBody(decideApprovalSchema)
  @ApiZodResponse(approvalViewSchema)
  deny(@Param('id') id: string, @Body(new ZodValidationPipe(decideApprovalSchema)) body: DecideApproval, @CurrentPrincipal() p: ApiPrincipal): Promise<ApprovalView> {
    return this.approvals.decide(id, 'denied', body.comment ?? null, p);
  }
}
