import type { Logger } from './logger.js';

/**
 * Says in the log why the gateway process is dying of a bug that escaped every handler: an exception
 * thrown in an event handler or timer, or a rejected promise nothing handles (Node 20 raises it as an
 * uncaught exception). A monitor only: Node's own handling goes on after it — the stack on stderr and
 * exit code 1 — because a process whose invariants a bug just broke (sessions half-torn-down, buffer
 * accounting off, a relay half-wired) must not keep serving every other user's sessions; the
 * supervisor restarts it. Without this the reason was on stderr only, apart from the JSON log.
 */
export function logFatalErrors(logger: Logger): void {
  process.on('uncaughtExceptionMonitor', (err: unknown, origin: NodeJS.UncaughtExceptionOrigin) => {
    const e = err instanceof Error ? err : new Error(String(err));
    // pino's default destination writes synchronously: the line is out before the process exits
    logger.fatal(
      { err: e.message, stack: e.stack, origin },
      origin === 'unhandledRejection'
        ? `gateway stopping: a promise rejected and nothing handled it (a bug): ${e.message}`
        : `gateway stopping: an exception nothing caught (a bug): ${e.message}`,
    );
  });
}
