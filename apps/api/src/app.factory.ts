import 'reflect-metadata';
import { Logger as NestLogger, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module.js';
import { loadApiConfig, type ApiConfig } from './config/env.js';
import { toErrorResponse } from './common/http-exception.filter.js';
import { MetricsService } from './metrics/metrics.service.js';
import { serveConsole } from './web-console/console-static.js';

export { InvalidEnvError } from './config/env.js';

const BODY_LIMIT = '1mb';
const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'];
const JSON_TYPES = ['application/json', 'application/*+json'];
const FORM_TYPES = ['application/x-www-form-urlencoded'];

/**
 * Builds the api (not listening). Env = process.env merged with `envOverrides`, validated; an invalid env
 * throws InvalidEnvError listing every bad key. Used by main.ts and every e2e test.
 */
export async function createApiApp(envOverrides: Record<string, string> = {}): Promise<INestApplication> {
  const config = loadApiConfig({ ...process.env, ...envOverrides });
  // Nest's own logger stays off until pino takes over: a failed boot (NATS or Postgres down) is reported once, by
  // the caller, as one line — not as Nest's stack trace.
  const app = await NestFactory.create(AppModule.forRoot(config), { bodyParser: false, logger: false, abortOnError: false });
  try {
    app.useLogger(app.get(Logger));
    configureHttp(app, config);
    setupOpenApi(app);
    await app.init();
  } catch (err) {
    // Release what did start (the NATS connection, the Prisma pool) before reporting.
    await app.close().catch(() => undefined);
    throw err;
  }
  return app;
}

function configureHttp(app: INestApplication, _config: ApiConfig): void {
  const http = app.getHttpAdapter().getInstance() as express.Express;
  http.disable('x-powered-by');
  const metrics = app.get(MetricsService);
  const logger = new NestLogger('http');

  app.use((req: Request, res: Response, next: NextFunction) => {
    const end = metrics.httpDuration.startTimer({ method: req.method });
    res.on('finish', () => {
      // The matched route pattern, never the raw path (ids would explode label cardinality).
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      end({ route });
      metrics.httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  });

  // Bodies with a type we do not parse are refused rather than silently read as empty.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (hasBody && !req.is([...JSON_TYPES, ...YAML_TYPES, ...FORM_TYPES])) {
      res.status(415).json({ error: { code: 'unsupported_media_type', message: `unsupported Content-Type ${req.headers['content-type'] ?? '(none)'}; send application/json` } });
      return;
    }
    next();
  });
  serveConsole(http);
  app.use(express.json({ limit: BODY_LIMIT, type: JSON_TYPES, strict: true }));
  app.use(express.text({ limit: BODY_LIMIT, type: YAML_TYPES }));
  app.use(express.urlencoded({ limit: BODY_LIMIT, type: FORM_TYPES, extended: false }));
  // Parser errors (malformed JSON, too large) in the contract's error shape.
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const { status, body } = toErrorResponse(err, logger, req);
    res.status(status).json(body);
  });
}

function setupOpenApi(app: INestApplication): void {
  const doc = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Portcullis API')
      .setDescription('Control plane of the Portcullis access gateway. Errors: {"error": {"code", "message"}}.')
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('docs', app, doc, { jsonDocumentUrl: 'docs-json' });
}
