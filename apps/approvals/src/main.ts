import { loadEnvOrExit } from '@portcullis/protocol';
import { pino } from 'pino';
import { startApprovalsApp } from './app.js';
import { approvalsEnvSchema } from './env.js';

const env = loadEnvOrExit('approvals', approvalsEnvSchema);
const log = pino({ name: 'approvals', level: env.LOG_LEVEL });
try {
  const app = await startApprovalsApp(env, { log });
  const stop = (signal: string) => {
    log.info({ signal }, 'stopping');
    app.stop().then(() => process.exit(0), (err: unknown) => {
      log.error({ err }, 'unclean stop');
      process.exit(1);
    });
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
} catch (err) {
  log.fatal({ err }, 'approvals app failed to start');
  process.exit(1);
}
