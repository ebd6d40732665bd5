import { Injectable } from '@nestjs/common';
import { PrismaClient } from '@portcullis/db';
import { toRecordedEvent } from '@portcullis/protocol';
import { NotFoundError } from '../common/errors.js';
import type { ApiPrincipal } from '../auth/principal.js';
import { SessionsService } from './sessions.service.js';
import { TerminalStreams, type TerminalStreamInfo } from './recording-cast.js';

const PAGE = 2000;

/** Terminal recordings (SSH shells/exec, kubectl exec/attach) of a session, as asciicast v2. */
@Injectable()
export class RecordingService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly sessions: SessionsService,
  ) {}

  /** The cast of `stream` (default: the session's first terminal stream), and every stream the session has. */
  async cast(id: string, stream: string | undefined, p: ApiPrincipal): Promise<{ cast: string; stream: string; streams: TerminalStreamInfo[] }> {
    await this.sessions.visible(id, p);
    const streams = new TerminalStreams();
    for (let after = 0; ; ) {
      const rows = await this.prisma.event.findMany({ where: { chain: id, type: 'terminal', seq: { gt: after } }, orderBy: { seq: 'asc' }, take: PAGE });
      for (const r of rows) streams.add(toRecordedEvent(r));
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1]!.seq;
    }
    const list = streams.list();
    if (!list.length) throw new NotFoundError(`session ${id} has no terminal recording (only SSH shells/exec and kubectl exec/attach sessions have one)`, 'no_terminal_recording');
    const chosen = stream ?? list[0]!.stream;
    if (!streams.has(chosen)) {
      throw new NotFoundError(`session ${id} has no terminal stream "${chosen}" (it has: ${list.map((s) => s.stream).join(', ')})`, 'no_terminal_recording');
    }
    return { cast: streams.cast(chosen), stream: chosen, streams: list };
  }
}
