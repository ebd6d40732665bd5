import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { ApiZodBody, ApiZodResponse } from '../common/openapi.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { CurrentPrincipal } from '../auth/decorators.js';
import type { ApiPrincipal } from '../auth/principal.js';
import { AccessRequestsService } from './access-requests.service.js';
import {
  accessRequestViewSchema, createAccessRequestSchema, decideAccessRequestSchema, listAccessRequestsQuerySchema, revokeAccessRequestSchema,
  type AccessRequestView, type CreateAccessRequest, type DecideAccessRequest, type ListAccessRequestsQuery, type RevokeAccessRequest,
} from './dto/access-request.dto.js';

@ApiTags('access-requests')
@ApiBearerAuth()
@Controller('v1/access-requests')
export class AccessRequestsController {
  constructor(private readonly requests: AccessRequestsService) {}

  @Get()
  @ApiZodResponse(z.array(accessRequestViewSchema))
  list(@Query(new ZodValidationPipe(listAccessRequestsQuerySchema, 'query')) q: ListAccessRequestsQuery, @CurrentPrincipal() p: ApiPrincipal): Promise<AccessRequestView[]> {
    return this.requests.list(q, p);
  }

  @Post()
  @ApiZodBody(createAccessRequestSchema)
  @ApiZodResponse(accessRequestViewSchema, 201)
  create(@Body(new ZodValidationPipe(createAccessRequestSchema)) body: CreateAccessRequest, @CurrentPrincipal() p: ApiPrincipal): Promise<AccessRequestView> {
    return this.requests.create(body, p);
  }

  @Get(':id')
  @ApiZodResponse(accessRequestViewSchema)
  get(@Param('id') id: string, @CurrentPrincipal() p: ApiPrincipal): Promise<AccessRequestView> {
    return this.requests.get(id, p);
  }

  @Post(':id/approve')
  @HttpCode(200)
  @ApiZodBody(decideAccessRequestSchema)
  @ApiZodResponse(accessRequestViewSchema)
  approve(@Param('id') id: string, @Body(new ZodValidationPipe(decideAccessRequestSchema)) body: DecideAccessRequest, @CurrentPrincipal() p: ApiPrincipal): Promise<AccessRequestView> {
    return this.requests.decide(id, 'approved', body.comment ?? null, p);
  }

  @Post(':id/deny')
  @HttpCode(200)
  @ApiZodBody(decideAccessRequestSchema)
  @ApiZodResponse(accessRequestViewSchema)
  deny(@Param('id') id: string, @Body(new ZodValidationPipe(decideAccessRequestSchema)) body: DecideAccessRequest, @CurrentPrincipal() p: ApiPrincipal): Promise<AccessRequestView> {
    return this.requests.decide(id, 'denied', body.comment ?? null, p);
  }

  /** Ends an approved grant before its end (approvers of the connection's policy, admins); 409 unless it is running. */
  @Post(':id/revoke')
  @HttpCode(200)
  @ApiZodBody(revokeAccessRequestSchema)
  @ApiZodResponse(accessRequestViewSchema)
  revoke(@Param('id') id: string, @Body(new ZodValidationPipe(revokeAccessRequestSchema)) body: RevokeAccessRequest, @CurrentPrincipal() p: ApiPrincipal): Promise<AccessRequestView> {
    return this.requests.revoke(id, body.reason ?? null, p);
  }
}
