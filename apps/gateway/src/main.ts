import { loadGatewayEnv } from './env.js';
import { logFatalErrors } from './crash-log.js';
import { Gateway } from './gateway.js';
import { createLogger } from './logger.js';

const env = loadGatewayEnv();
const logger = createLogger(env.LOG_LEVEL, { gateway: env.GATEWAY_ID, pool: env.GATEWAY_POOL });
// no catch-all: a bug that escapes its handler still stops the process, but the log says why
logFatalErrors(logger);
// approvals of held commands are on (REDIS_URL, APPROVALS_QUEUE_PREFIX)
const gateway = new Gateway({ env, logger, approvals: {} });

gateway.start().catch((err: Error) => {
  logger.fatal({ err: err.message }, 'gateway failed to start');
  process.exit(1);
});

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ sig }, 'stopping');
    gateway.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
