/**
 * Runs the development OpenID provider on DEV_IDP_PORT (default 8090) — used by `pnpm start`, never in production.
 *   node apps/api/dist/dev-idp/dev-idp.main.js
 * Env: DEV_IDP_PORT, DEV_IDP_HOST (default 127.0.0.1), DEV_IDP_REDIRECT_URIS (comma-separated, extra
 * redirect URIs for the portcullis-api client besides http://127.0.0.1:8080/v1/auth/callback).
 */
import pino from 'pino';
import { DEV_USERS, startDevIdp } from './dev-idp.js';

const log = pino({ name: 'dev-idp', level: process.env.LOG_LEVEL ?? 'info' });

async function main(): Promise<void> {
  const rawPort = process.env.DEV_IDP_PORT ?? '8090';
  const port = Number(rawPort);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    log.error(`DEV_IDP_PORT: expected a port number, got "${rawPort}"`);
    process.exit(1);
  }
  const redirectUris = (process.env.DEV_IDP_REDIRECT_URIS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const idp = await startDevIdp({ port, host: process.env.DEV_IDP_HOST ?? '127.0.0.1', redirectUris });
  log.info({ issuer: idp.issuer, users: DEV_USERS.map((u) => `${u.username}/${u.password}`) }, `dev OpenID provider at ${idp.issuer}`);

  const stop = (): void => {
    idp.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  log.error({ err }, 'dev OpenID provider failed to start');
  process.exit(1);
});
