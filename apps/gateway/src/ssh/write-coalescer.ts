import type { Socket } from 'node:net';

const COALESCED = Symbol('writes coalesced');

/**
 * Makes the writes `socket` gets within one tick go out as one `writev`: ssh2 writes each SSH packet
 * as several pieces (AES-GCM: the length, the ciphertext and the tag, each its own `write`), and with
 * Nagle off every piece would be its own syscall and its own TCP segment — three loopback round trips
 * through the kernel, and three wake-ups of the peer, per 32 KiB of a bulk transfer. The cork is
 * lifted on `process.nextTick`, before the event loop moves on, so an interactive keystroke waits for
 * nothing.
 */
export function coalesceWrites(socket: Socket): Socket {
  const s = socket as Socket & { [COALESCED]?: true };
  if (s[COALESCED]) return socket;
  s[COALESCED] = true;
  const write = socket.write;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (this: Socket, ...args: Parameters<Socket['write']>): boolean {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  } as Socket['write'];
  return socket;
}
