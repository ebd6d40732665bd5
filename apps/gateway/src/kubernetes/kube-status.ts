import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Kubernetes `Status` objects (meta/v1): what the API server answers errors with, and what kubectl
 * prints as `Error from server (<reason>): <message>`. Every refusal of the gateway is one.
 */
export type StatusReason = 'Forbidden' | 'Unauthorized' | 'BadRequest' | 'NotFound' | 'RequestEntityTooLarge' | 'ServiceUnavailable' | 'InternalError' | 'Timeout' | 'MethodNotAllowed';

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
}

export function statusObject(code: number, reason: StatusReason, message: string, details?: StatusDetails): Record<string, unknown> {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details && Object.values(details).some((v) => v) ? { details } : {}),
    code,
  };
}

/** Answers an HTTP request with a Status (unless the response already started: then it is cut). */
export function sendStatus(res: ServerResponse, code: number, reason: StatusReason, message: string, details?: StatusDetails, headers: Record<string, string | string[]> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(statusObject(code, reason, message, details));
  res.writeHead(code, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** The same on a socket that asked for an upgrade (exec/attach/port-forward): a whole HTTP/1.1 response, then close. */
export function sendStatusOnSocket(socket: Duplex, code: number, reason: StatusReason, message: string, details?: StatusDetails): void {
  const body = JSON.stringify(statusObject(code, reason, message, details));
  const text = STATUS_TEXT[code] ?? 'Error';
  socket.end(`HTTP/1.1 ${code} ${text}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 413: 'Payload Too Large',
  500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};
