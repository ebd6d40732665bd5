import type { Socket } from 'node:net';
import type { PgFramer } from '@portcullis/protocol';
import type { BufferBudget } from '../core/buffer-budget.js';
import type { GatewayMetrics } from '../http/metrics.js';
import type { Logger } from '../logger.js';
import type { RelayMachine } from './relay-machine.js';
import type { SocketReads } from './socket-reads.js';

export type RelaySide = 'client' | 'upstream';

/**
 * How a live session's bytes move between its sockets: the JavaScript relay (js-relay.ts) or the
 * native fast lane (lane-relay.ts). The session's pumps, RelayMachine, output coalescing and
 * lifecycle are the same over both; only reading, writing and backpressure differ.
 */
export interface RelayTransport {
  /** starts moving bytes (the sockets' listeners, or the lane that took them) */
  start(): void;
  /** bytes to one side, in order */
  write(side: RelaySide, b: Buffer): void;
  /** several buffers to one side at once, in order (one syscall where the transport can) */
  writeMany(side: RelaySide, parts: readonly Buffer[]): void;
  /** the session's pump of `side` is done for now (the lane then reads on, unless a hook holds that side) */
  pumped(side: RelaySide): void;
  /** writes the FATAL frame that ends the session; false: the session ends the client socket with it */
  fatal(frame: Buffer): boolean;
  /** the client's Terminate, passed to the target */
  terminateUpstream(frame: Buffer): void;
  /** the session ends: what is still in flight is counted, held memory given back */
  ending(): void;
  /** after ending: the transport lets go of the sockets (the session closes them) */
  close(graceful: boolean): void;
}

/** A live session's ends: its sockets, framers and machine (fixed once the relay starts). */
export interface RelayEnds {
  readonly client: Socket;
  readonly upstream: Socket;
  readonly clientTls: boolean;
  readonly upstreamTls: boolean;
  readonly clientFramer: PgFramer;
  readonly upstreamFramer: PgFramer;
  readonly upstreamReads: SocketReads | null;
  readonly machine: RelayMachine;
}

/** What a transport uses of its session (ClientSession). */
export interface RelayHost {
  readonly log: Logger;
  readonly metrics: GatewayMetrics;
  /** memory for large messages in flight: the process's budget and one session's share */
  readonly buffers: { process: BufferBudget; sessionBytes: number } | undefined;
  readonly isEnded: boolean;
  /** a hook holds that direction */
  readonly clientBusy: boolean;
  readonly upstreamBusy: boolean;
  /** bytes read from the client while a hook holds it */
  heldBytes: number;
  bytesIn: number;
  bytesOut: number;
  /** the machine's output is muted (the lane replays what it forwarded already) */
  replaying: boolean;
  /** frames relayed from each side */
  readonly framed: Readonly<Record<RelaySide, number>>;
  readonly clientPause: Set<string>;
  readonly upstreamPause: Set<string>;
  pause(set: Set<string>, s: Socket, why: string): void;
  unpause(set: Set<string>, s: Socket, why: string): void;
  pumpClient(): void;
  pumpUpstream(): void;
  endSession(reason: string, graceful?: boolean): void;
  upstreamClosed(): void;
  relayFailed(err: unknown, side: RelaySide): void;
  terminate(code: string, message: string, reason: string): void;
}
