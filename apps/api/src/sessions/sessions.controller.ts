import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Roles } from '../auth/decorators.js';
import { ApiZodResponse } from '../common/openapi.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { ChainVerifierService } from './chain-verifier.service.js';
import { SessionsService } from './sessions.service.js';
import {
  listSessionsQuerySchema, sessionEventsQuerySchema, sessionEventsViewSchema, sessionViewSchema, verifyViewSchema,
  type ListSessionsQuery, type SessionEventsQuery, type SessionEventsView, type SessionView, type VerifyView,
} from './dto/session.dto.js';

/** Recorded sessions: auditors and admins. `GET /v1/sessions/control-plane/verify` checks the control-plane chain. */
@ApiTags('sessions')
@ApiBearerAuth()
@Roles('auditor')
@Controller('v1/sessions')
export class SessionsController {
  constructor(
    private readonly sessions: SessionsService,
    private readonly verifier: ChainVerifierService,
  ) {}

  @Get()
  @ApiZodResponse(z.array(sessionViewSchema))
  list(@Query(new ZodValidationPipe(listSessionsQuerySchema, 'query')) q: ListSessionsQuery): Promise<SessionView[]> {
    return this.sessions.list(q);
  }

  @Get(':id')
  @ApiZodResponse(sessionViewSchema)
  get(@Param('id') id: string): Promise<SessionView> {
    return this.sessions.get(id);
  }

  @Get(':id/events')
  @ApiZodResponse(sessionEventsViewSchema)
  events(@Param('id') id: string, @Query(new ZodValidationPipe(sessionEventsQuerySchema, 'query')) q: SessionEventsQuery): Promise<SessionEventsView> {
    return this.sessions.events(id, q);
  }

  @Get(':id/verify')
  @ApiZodResponse(verifyViewSchema)
  verify(@Param('id') id: string): Promise<VerifyView> {
    return this.verifier.verify(id);
  }
}
