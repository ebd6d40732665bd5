import { HttpException, Logger, NotFoundException } from '@nestjs/common';
import { describe, expect, it, vi } from 'vitest';
import { NotFoundError, ValidationError } from './errors.js';
import { toErrorResponse } from './http-exception.filter.js';

const logger = new Logger('test');

describe('toErrorResponse', () => {
  it('maps ApiErrors to their status and code', () => {
    expect(toErrorResponse(new NotFoundError('connection "x" does not exist', 'connection_not_found'), logger)).toEqual({
      status: 404,
      body: { error: { code: 'connection_not_found', message: 'connection "x" does not exist' } },
    });
    expect(toErrorResponse(new ValidationError(['a: x', 'b: y']), logger).body.error).toEqual({ code: 'validation_failed', message: 'a: x; b: y' });
  });

  it('maps body-parser errors: malformed JSON is a 400', () => {
    const err = Object.assign(new SyntaxError('Unexpected end of JSON input'), { status: 400, type: 'entity.parse.failed' });
    expect(toErrorResponse(err, logger)).toEqual({ status: 400, body: { error: { code: 'malformed_json', message: 'malformed JSON body: Unexpected end of JSON input' } } });
    const big = Object.assign(new Error('request entity too large'), { status: 413, type: 'entity.too.large' });
    expect(toErrorResponse(big, logger).status).toBe(413);
  });

  it('maps Nest HttpExceptions', () => {
    expect(toErrorResponse(new NotFoundException('x'), logger).body.error.code).toBe('not_found');
  });

  it('never leaks internals: unknown errors are a generic 500, logged', () => {
    const spy = vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    const r = toErrorResponse(new Error('password=hunter2 at db.internal:5432'), logger);
    expect(r).toEqual({ status: 500, body: { error: { code: 'internal', message: 'internal error' } } });
    expect(spy).toHaveBeenCalled();
    const r2 = toErrorResponse(new HttpException('db.internal exploded', 502), logger);
    expect(r2.body.error.message).toBe('internal error');
  });
});
