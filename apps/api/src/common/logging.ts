import type { Params } from 'nestjs-pino';
import type { IncomingMessage } from 'node:http';

/** Never log credentials: headers, passwords, tokens and secrets anywhere in a logged object. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'password',
  '*.password',
  '*.*.password',
  'token',
  '*.token',
  'access_token',
  '*.access_token',
  'subject_token',
  '*.subject_token',
  'client_secret',
  '*.client_secret',
  'secret',
  '*.secret',
  'secretCiphertext',
  '*.secretCiphertext',
];

export function pinoOptions(level: string): Params {
  return {
    pinoHttp: {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Query strings may carry codes/tokens (OIDC callback): log the path only.
      serializers: {
        req: (req: IncomingMessage & { id?: unknown; method?: string; url?: string }) => ({
          id: req.id,
          method: req.method,
          url: (req.url ?? '').split('?')[0],
        }),
      },
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/metrics' },
    },
  };
}
