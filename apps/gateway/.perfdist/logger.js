import { pino } from 'pino';
export function createLogger(level = process.env.LOG_LEVEL ?? 'info', bindings = {}) {
    return pino({ level, base: { app: 'gateway', ...bindings } });
}
//# sourceMappingURL=logger.js.map