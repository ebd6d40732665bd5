import 'reflect-metadata';
import { loadEnvOrExit } from '@portcullis/protocol';
import { apiEnvSchema } from './config/env.js';
import { createApiApp } from './app.factory.js';

async function main(): Promise<void> {
  const env = loadEnvOrExit('api', apiEnvSchema);
  let app;
  try {
    app = await createApiApp();
  } catch (err) {
    // Missing Postgres/NATS and the like: one clear line, not a stack trace.
    const e = err as Error & { cause?: unknown };
    const cause = e.cause instanceof Error ? ` (${e.cause.message})` : '';
    process.stderr.write(`api: cannot start: ${e.message}${cause}\n`);
    process.exit(1);
  }
  app.enableShutdownHooks(['SIGINT', 'SIGTERM']);
  await app.listen(env.API_PORT);
  process.stdout.write(`api: listening on :${env.API_PORT} (OpenAPI at /docs)\n`);
}

void main();
