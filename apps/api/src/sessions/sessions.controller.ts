import { Controller, Get, Param, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';
import { CurrentPrincipal } from '../auth/decorators.js';
import type { ApiPrincipal } from '../auth/principal.js';
import { ApiZodResponse } from '../common/openapi.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { ChainVerifierService } from './chain-verifier.service.js';
import { SessionsService } from './sessions.service.js';
import { RecordingService } from './recording.service.js';
import {
  listSessionsQuerySchema, sessionDetailQuerySchema, sessionDetailViewSchema, sessionEventsQuerySchema, sessionEventsViewSchema, sessionViewSchema, verifyViewSchema,
  type ListSessionsQuery, type SessionDetailQuery, type SessionDetailView, type SessionEventsQuery, type SessionEventsView, type SessionView, type VerifyView,
} from './dto/session.dto.js';

const castQuerySchema = z.strictObject({ stream: z.string().min(1).max(200).optional() });
type CastQuery = z.infer<typeof castQuerySchema>;

/**
 * Recorded sessions. Auditors and admins see all; anyone else sees their own (a session that is not
 * theirs answers 404, as one that does not exist). `GET /v1/sessions/control-plane/verify` checks the
 * control-plane chain (auditors and admins: it is nobody's session).
 */
@ApiTags('sessions')
@ApiBearerAuth()
@Controller('v1/sessions')
export class SessionsController {
  constructor(
    private readonly sessions: SessionsService,
    private readonly verifier: ChainVerifierService,
    private readonly recording: RecordingService,
  ) {}

  @Get()
  @ApiZodResponse(z.array(sessionViewSchema))
  list(@Query(new ZodValidationPipe(listSessionsQuerySchema, 'query')) q: ListSessionsQuery, @CurrentPrincipal() p: ApiPrincipal): Promise<SessionView[]> {
    return this.sessions.list(q, p);
  }

  @Get(':id')
  @ApiZodResponse(sessionDetailViewSchema)
  get(@Param('id') id: string, @Query(new ZodValidationPipe(sessionDetailQuerySchema, 'query')) q: SessionDetailQuery, @CurrentPrincipal() p: ApiPrincipal): Promise<SessionDetailView> {
    return this.sessions.detail(id, q, p);
  }

  @Get(':id/events')
  @ApiZodResponse(sessionEventsViewSchema)
  events(@Param('id') id: string, @Query(new ZodValidationPipe(sessionEventsQuerySchema, 'query')) q: SessionEventsQuery, @CurrentPrincipal() p: ApiPrincipal): Promise<SessionEventsView> {
    return this.sessions.events(id, q, p);
  }

  /** The session's events as JSON lines (the audit export's jsonl form), for download. */
  @Get(':id/events.jsonl')
  @ApiOkResponse({ description: 'one recorded event per line, oldest first' })
  async jsonl(@Param('id') id: string, @CurrentPrincipal() p: ApiPrincipal, @Res({ passthrough: true }) res: Response): Promise<string> {
    const lines: string[] = [];
    for (let after = 0; ; ) {
      const page = await this.sessions.events(id, { after, limit: 5000 }, p);
      for (const e of page.events) lines.push(JSON.stringify(e));
      if (page.next === null) break;
      after = page.next;
    }
    res.setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="session-${id.replace(/[^A-Za-z0-9._-]/g, '_')}.jsonl"`);
    res.setHeader('Cache-Control', 'no-store');
    return lines.length ? `${lines.join('\n')}\n` : '';
  }

  /**
   * A terminal of the session (SSH shell/exec, kubectl exec/attach) as asciicast v2 — what the client
   * saw, after masking — for `asciinema play`. `?stream=` picks one when the session had several
   * (header X-Terminal-Streams lists them); 404 when the session has no terminal.
   */
  @Get(':id/recording.cast')
  @ApiProduces('application/x-asciicast')
  @ApiQuery({ name: 'stream', required: false })
  @ApiOkResponse({ description: 'asciicast v2: a JSON header line, then [time, "o"|"i"|"r", data] lines' })
  async cast(@Param('id') id: string, @Query(new ZodValidationPipe(castQuerySchema, 'query')) q: CastQuery, @CurrentPrincipal() p: ApiPrincipal, @Res({ passthrough: true }) res: Response): Promise<string> {
    const r = await this.recording.cast(id, q.stream, p);
    res.setHeader('Content-Type', 'application/x-asciicast; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="session-${`${id}-${r.stream}`.replace(/[^A-Za-z0-9._-]/g, '_')}.cast"`);
    res.setHeader('X-Terminal-Streams', r.streams.map((s) => encodeURIComponent(s.stream)).join(','));
    res.setHeader('Cache-Control', 'no-store');
    return r.cast;
  }

  @Get(':id/verify')
  @ApiZodResponse(verifyViewSchema)
  async verify(@Param('id') id: string, @CurrentPrincipal() p: ApiPrincipal): Promise<VerifyView> {
    await this.sessions.visibleChain(id, p);
    return this.verifier.verify(id);
  }
}
