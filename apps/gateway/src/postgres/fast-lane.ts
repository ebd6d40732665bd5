import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { BackendMessageType as B, FrontendMessageType as F, ProtocolError } from '@portcullis/protocol';

/**
 * The fast lane (apps/gateway/native/fast_lane.c): a native relay for a plaintext session's two
 * sockets that forwards by itself what the JavaScript relay would forward untouched, and hands it
 * everything else. See the C file for the contract; this module loads it, builds its message
 * tables from the relay's rules, and reads its log.
 */

/** What the lane does with a message type (the C enum). */
export const LaneClass = {
  /** handed whole to the relay; that side waits until resume() */
  ToRelay: 0,
  Pass: 1,
  /** passes; the relay replays it (type and time) */
  PassLogged: 2,
  /** passes; the relay replays it with its payload (a small message) */
  PassLoggedWithPayload: 3,
  /** passes; counted (DataRow) */
  PassCounted: 4,
} as const;

export const LaneSide = { Client: 0, Upstream: 1 } as const;
export type LaneSide = (typeof LaneSide)[keyof typeof LaneSide];

export interface NativeLane {
  write(side: LaneSide, b: Buffer): boolean;
  resume(side: LaneSide): void;
  /** bytes of log to replay now (the log is then empty) */
  take(): number;
  log(): Buffer | null;
  bytesRead(side: LaneSide): number;
  close(): void;
}

export interface LaneOptions {
  clientClasses: Uint8Array;
  clientCaps: Uint32Array;
  upstreamClasses: Uint8Array;
  upstreamCaps: Uint32Array;
  /**
   * true: the frame is dealt with, read on; false: resume(side) comes later. `length` >= 0: the
   * frame is buffer[0, length) of a buffer the lane reuses (copy it out before anything else);
   * -1: `buffer` is the frame, a copy of its own.
   */
  onMessage(side: LaneSide, buffer: Buffer, logBytes: number, length: number): boolean;
  onLog(logBytes: number): void;
  /** errno (0: end of stream; -1: a length outside the caps, with its type and length) */
  onClose(side: LaneSide, errno: number, type: number, length: number): void;
}

interface NativeModule {
  open(clientFd: number, upstreamFd: number, options: LaneOptions): NativeLane;
  trimHeap(): boolean;
  LOG_HEAD: number;
}

let native: NativeModule | null = null;
let loadError: string | null = null;
try {
  // apps/gateway/native/build/Release, from src/postgres (tests) and dist/postgres alike
  native = createRequire(import.meta.url)('../../native/build/Release/fast_lane.node') as NativeModule;
} catch (err) {
  loadError = (err as Error).message.split('\n')[0];
}

/** null when the lane can be used; else why not (not built on this machine). */
export function fastLaneUnavailable(): string | null {
  return native ? null : `native module not loaded (${loadError}); run pnpm build on a machine with a C compiler`;
}

/**
 * Returns the C heap's free pages to the kernel (malloc_trim); false when nothing was released or
 * the native module is not built. Lives in the lane's module because it is the gateway's only one.
 */
export function trimNativeHeap(): boolean {
  return native ? native.trimHeap() : false;
}

/** Header of a log record: kind u8, side u8, payload length u32 LE, time f64 LE (ms since the epoch); the C side's size. */
export const LOG_HEAD: number = native ? native.LOG_HEAD : 0;

/**
 * The relay's rules as tables, for a session whose policy does not mask results (the lane is never
 * used otherwise). Everything the relay decides on, rewrites or drops goes to it; everything it
 * only forwards and counts passes.
 */
function tables(): { client: Uint8Array; upstream: Uint8Array } {
  const client = new Uint8Array(256); // ToRelay: Query, Parse, FunctionCall, Terminate, anything unknown
  for (const t of [F.Describe, F.Close, F.Flush, F.CopyData, F.CopyDone, F.CopyFail, F.Password]) client[t] = LaneClass.Pass;
  // Bind may run code (planning, domain checks) that changes a setting: the relay notes it (settingsKnown)
  client[F.Bind] = LaneClass.PassLogged;
  client[F.Execute] = LaneClass.PassLogged;
  client[F.Sync] = LaneClass.PassLogged;
  const upstream = new Uint8Array(256); // ToRelay: ErrorResponse, ParameterStatus, BackendKeyData, NotificationResponse, anything unknown
  // CloseComplete goes to the relay: it answers the relay's own probes too (RelayMachine.openExtended)
  for (const t of [
    B.ParseComplete, B.BindComplete, B.NoData, B.ParameterDescription, B.RowDescription,
    B.CopyOutResponse, B.CopyInResponse, B.CopyBothResponse, B.CopyData, B.CopyDone, B.NoticeResponse,
    B.FunctionCallResponse,
  ]) upstream[t] = LaneClass.Pass;
  // NotificationResponse goes to the relay: its pid is relabelled (RelayMachine.setBackendPids)
  for (const t of [B.CommandComplete, B.EmptyQueryResponse, B.PortalSuspended, B.ReadyForQuery]) upstream[t] = LaneClass.PassLoggedWithPayload;
  upstream[B.DataRow] = LaneClass.PassCounted;
  return { client, upstream };
}
const TABLES = tables();

interface StreamHandle {
  fd?: number;
  readStop?: () => number;
  reading?: boolean;
}

/** The descriptor under a plain TCP socket, or null (TLS, a pipe, a handle Node does not expose). */
function plainFd(s: Socket): number | null {
  const h = (s as unknown as { _handle?: StreamHandle })._handle;
  return h && typeof h.fd === 'number' && h.fd >= 0 && typeof h.readStop === 'function' ? h.fd : null;
}

/**
 * Stops Node reading the socket (the lane reads a duplicate of its descriptor from now on). A
 * paused net.Socket would otherwise keep reading until its buffer fills.
 */
function stopNodeReads(s: Socket): void {
  const h = (s as unknown as { _handle: StreamHandle })._handle;
  h.readStop!();
  h.reading = false;
  s.pause();
}

/**
 * Opens a lane over two sockets that carry plaintext and have nothing buffered either way, or
 * returns why not. The caller keeps its sockets (and closes them after lane.close()).
 */
export function openLane(
  client: Socket,
  upstream: Socket,
  caps: { client: Uint32Array; upstream: Uint32Array },
  handlers: Pick<LaneOptions, 'onMessage' | 'onLog' | 'onClose'>,
): NativeLane | string {
  if (!native) return fastLaneUnavailable()!;
  const cfd = plainFd(client);
  const ufd = plainFd(upstream);
  if (cfd === null || ufd === null) return 'a socket is not plain TCP';
  if (client.readableLength || upstream.readableLength || client.writableLength || upstream.writableLength) return 'bytes are buffered on a socket';
  stopNodeReads(client);
  stopNodeReads(upstream);
  return native.open(cfd, ufd, {
    clientClasses: TABLES.client,
    clientCaps: caps.client,
    upstreamClasses: TABLES.upstream,
    upstreamCaps: caps.upstream,
    ...handlers,
  });
}

/** The ProtocolError the JavaScript framer would have raised for the same bad length. */
export function laneLengthError(type: number, length: number, caps: Uint32Array): ProtocolError {
  return new ProtocolError('length_out_of_range', `message type 0x${type.toString(16).padStart(2, '0')} has length ${length}, outside 4..${caps[type]}`);
}
