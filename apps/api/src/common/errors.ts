/**
 * Errors the api turns into `{"error": {"code", "message"}}` responses. Services throw these;
 * the global filter maps them. Anything else becomes a 500 with a generic message.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class BadRequestError extends ApiError {
  constructor(message: string, code = 'bad_request', options?: { cause?: unknown }) {
    super(400, code, message, options);
  }
}

/** A body, query or param failed its schema; the message names each bad field. */
export class ValidationError extends ApiError {
  constructor(readonly issues: string[], code = 'validation_failed') {
    super(400, code, issues.join('; '));
  }
}

export class UnauthorizedError extends ApiError {
  constructor(message: string, code = 'unauthorized', options?: { cause?: unknown }) {
    super(401, code, message, options);
  }
}

export class ForbiddenError extends ApiError {
  constructor(message: string, code = 'forbidden') {
    super(403, code, message);
  }
}

export class NotFoundError extends ApiError {
  constructor(message: string, code = 'not_found') {
    super(404, code, message);
  }
}

export class ConflictError extends ApiError {
  constructor(message: string, code = 'conflict') {
    super(409, code, message);
  }
}

export class PayloadTooLargeError extends ApiError {
  constructor(message: string) {
    super(413, 'payload_too_large', message);
  }
}

export class UnsupportedMediaTypeError extends ApiError {
  constructor(message: string) {
    super(415, 'unsupported_media_type', message);
  }
}

export class ServiceUnavailableError extends ApiError {
  constructor(message: string, code = 'unavailable', options?: { cause?: unknown }) {
    super(503, code, message, options);
  }
}
