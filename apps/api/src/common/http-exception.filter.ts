import { Catch, HttpException, Logger, Optional, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response, Request } from 'express';
import { ApiError } from './errors.js';
import { AuthFailuresService } from '../control-events/auth-failures.service.js';

const CODES: Record<number, string> = {
  400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 405: 'method_not_allowed',
  409: 'conflict', 413: 'payload_too_large', 415: 'unsupported_media_type', 429: 'too_many_requests', 503: 'unavailable',
};

/** Nest's Logger takes (message, stack, context): keep the full error in the log, never in the response. */
function logError(logger: Logger, what: string, err: unknown, req?: Request): void {
  const e = err instanceof Error ? err : new Error(String(err));
  logger.error(`${what}${req ? ` on ${req.method} ${req.path}` : ''}: ${e.name}: ${e.message}`, e.stack);
}

export interface ErrorBody {
  error: { code: string; message: string };
}

/** Maps any error to the contract's error shape. Unknown errors: 500, generic message, logged in full. */
export function toErrorResponse(err: unknown, logger: Logger, req?: Request): { status: number; body: ErrorBody } {
  if (err instanceof ApiError) {
    return { status: err.status, body: { error: { code: err.code, message: err.message } } };
  }
  if (err instanceof HttpException) {
    const status = err.getStatus();
    const res = err.getResponse();
    let message = err.message;
    if (typeof res === 'object' && res && 'message' in res) {
      const m = (res as { message: unknown }).message;
      message = Array.isArray(m) ? m.join('; ') : String(m);
    }
    if (status === 404 && req) message = `no route ${req.method} ${req.path}`;
    if (status >= 500) {
      logError(logger, 'unhandled http exception', err, req);
      message = 'internal error';
    }
    return { status, body: { error: { code: CODES[status] ?? (status >= 500 ? 'internal' : 'bad_request'), message } } };
  }
  // body-parser errors carry `status`/`type` (malformed JSON, too large, bad charset).
  const e = err as { status?: number; type?: string; message?: string };
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500 && typeof e.type === 'string') {
    const code = e.type === 'entity.parse.failed' ? 'malformed_json' : e.type === 'entity.too.large' ? 'payload_too_large' : 'bad_request';
    const message = e.type === 'entity.parse.failed' ? `malformed JSON body: ${e.message ?? 'cannot parse'}` : (e.message ?? 'bad request');
    return { status: e.status, body: { error: { code, message } } };
  }
  logError(logger, 'unhandled error', err, req);
  return { status: 500, body: { error: { code: 'internal', message: 'internal error' } } };
}

@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('http');

  constructor(@Optional() private readonly authFailures?: AuthFailuresService) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const res = ctx.getResponse<Response>();
    const req = ctx.getRequest<Request>();
    const { status, body } = toErrorResponse(exception, this.logger, req);
    this.authFailures?.httpRefused(req, status, body.error.code, body.error.message);
    if (res.headersSent) return;
    res.status(status).json(body);
  }
}
