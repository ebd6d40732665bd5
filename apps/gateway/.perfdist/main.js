import { loadGatewayEnv } from './env.js';
import { Gateway } from './gateway.js';
import { createLogger } from './logger.js';
import { installApprovals } from './approvals/approvals-hooks.js';
const env = loadGatewayEnv();
const logger = createLogger(env.LOG_LEVEL, { gateway: env.GATEWAY_ID, pool: env.GATEWAY_POOL });
const gateway = new Gateway({ env, logger });
let approvals = null;
gateway.start().then(async () => { approvals = await installApprovals(gateway); }).catch((err) => {
    logger.fatal({ err: err.message }, 'gateway failed to start');
    process.exit(1);
});
let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
        if (stopping)
            process.exit(1);
        stopping = true;
        logger.info({ sig }, 'stopping');
        // held approvals are cancelled first: their sessions end with this gateway
        (approvals?.close() ?? Promise.resolve()).then(() => gateway.stop()).then(() => process.exit(0), () => process.exit(1));
    });
}
//# sourceMappingURL=main.js.map