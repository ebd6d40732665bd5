import { type Logger } from 'pino';
export type { Logger };
export declare function createLogger(level?: string, bindings?: Record<string, unknown>): Logger;
