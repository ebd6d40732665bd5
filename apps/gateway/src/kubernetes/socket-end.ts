import type { Duplex } from 'node:stream';

/** How long a client whose stream is over may go without taking any of what is queued for it, or without closing once it has all. */
export const CLIENT_CLOSE_GRACE_MS = 10_000;

/**
 * Ends a client's socket after what is queued for it (Node sends it, then the FIN): destroyed only when
 * the client stops taking data — or, having it all, does not close — for `graceMs`. Destroying at once,
 * as the upgrade relay did when the API server's side closed, drops whatever is still queued.
 */
export function endGracefully(socket: Duplex, graceMs = CLIENT_CLOSE_GRACE_MS): void {
  socket.end();
  let left = socket.writableLength;
  const watch = setInterval(() => {
    const now = socket.writableLength;
    if (now > 0 && now < left) {
      left = now;
      return;
    }
    clearInterval(watch);
    socket.destroy();
  }, graceMs);
  watch.unref();
  socket.once('close', () => clearInterval(watch));
}
