import { connect, type Socket } from 'node:net';
import { prng } from '../../../../libs/protocol/src/postgres/prng.test-support.js';
import {
  BackendMessageType as B,
  PgFramer,
  decodeErrorResponse,
  encodeBind,
  encodeClose,
  encodeDescribe,
  encodeExecute,
  encodeFlush,
  encodeParse,
  encodePassword,
  encodeQuery,
  encodeStartupMessage,
  encodeSync,
  type PgFrame,
} from '@portcullis/protocol';

/**
 * A seeded generator of valid-ish Postgres pipelines (Parse/Bind/Describe/Execute/Close/Sync with
 * errors at every step, simple Queries interleaved, sometimes before the Sync) and a raw client
 * that runs one against a server and writes down what came back. Run through the gateway and
 * straight against Postgres, two transcripts must be equal: that is the oracle.
 */

export { prng };

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

/** Statements for Parse: good ones, ones that fail at Parse, at Bind (bad parameter) or at Execute. */
const PARSED = [
  'select 1 as a',
  'select $1::int + 1 as b',
  'select g, md5(g::text) as h from generate_series(1, 3) g',
  'select 1/0',
  'selec 1',
  'select * from no_such_table',
  'select $1::int as c',
  'select repeat(\'x\', 5) as d',
  '',
];
/** Simple queries: one statement, several, an error, empty, a transaction step. */
const SIMPLE = ['select 2 as q', 'select 1/0', 'select 1 as x; select 2 as y', '', 'selec', 'select g from generate_series(1, 4) g', 'begin', 'rollback', 'select 3 as z; select 1/0; select 4'];

/** One pipeline: frames to send (the caller appends the end marker). */
export function pipeline(r: () => number, maxSteps = 10): Buffer[] {
  const out: Buffer[] = [];
  const steps = 1 + Math.floor(r() * maxSteps);
  for (let i = 0; i < steps; i++) {
    const k = r();
    const name = r() < 0.5 ? '' : `s${Math.floor(r() * 3)}`;
    const portal = r() < 0.7 ? '' : `p${Math.floor(r() * 2)}`;
    if (k < 0.2) out.push(encodeParse({ name, query: pick(r, PARSED) }));
    else if (k < 0.35) {
      const params = r() < 0.8 ? [Buffer.from(String(Math.floor(r() * 100)))] : [Buffer.from('not a number')];
      out.push(encodeBind({ portal, statement: name, params: r() < 0.85 ? params : [] }));
    } else if (k < 0.45) out.push(encodeDescribe(r() < 0.5 ? 'portal' : 'statement', r() < 0.5 ? portal : name));
    else if (k < 0.6) out.push(encodeExecute(portal, r() < 0.2 ? 1 : 0));
    else if (k < 0.65) out.push(encodeClose(r() < 0.5 ? 'portal' : 'statement', r() < 0.5 ? portal : name));
    else if (k < 0.68) out.push(encodeFlush());
    else if (k < 0.82) out.push(encodeSync());
    else out.push(encodeQuery(pick(r, SIMPLE)));
  }
  return out;
}

/** What a server answered: one line per message (type, and the value that matters for it). */
export type Transcript = string[];

const END = 'select 987654321 as end_marker';

export interface RawConn {
  /** Sends a pipeline (then Sync and the end marker) and reads everything up to the marker's ReadyForQuery. */
  run(frames: Buffer[], timeoutMs?: number): Promise<Transcript>;
  /** Sends raw bytes (a broken frame): resolves with what came back until the server closed. */
  raw(bytes: Buffer, timeoutMs?: number): Promise<Transcript>;
  close(): void;
  readonly closed: boolean;
}

export class FuzzHang extends Error {}

/** One frame with a few bytes changed (type byte, length field or payload): what a broken client sends. */
export function mutate(r: () => number, frame: Buffer): Buffer {
  const b = Buffer.from(frame);
  const n = 1 + Math.floor(r() * 3);
  for (let i = 0; i < n; i++) {
    const at = r() < 0.5 ? Math.floor(r() * Math.min(5, b.length)) : Math.floor(r() * b.length);
    b[at] = Math.floor(r() * 256);
  }
  return r() < 0.1 ? b.subarray(0, Math.floor(r() * b.length)) : b;
}

/** Opens a raw connection; `password` for the gateway (cleartext), none for a trust Postgres. */
export async function openRaw(port: number, params: { user: string; database: string; password?: string }): Promise<RawConn> {
  const s: Socket = connect({ host: '127.0.0.1', port });
  const framer = new PgFramer({ startup: false, from: 'server' });
  const frames: PgFrame[] = [];
  let wake: (() => void) | null = null;
  let closed = false;
  s.on('data', (b: Buffer) => {
    framer.push(b);
    for (let f = framer.next(); f; f = framer.next()) frames.push(f);
    wake?.();
  });
  s.on('error', () => undefined);
  s.on('close', () => {
    closed = true;
    wake?.();
  });
  const nextFrame = async (deadline: number): Promise<PgFrame | null> => {
    while (frames.length === 0) {
      if (closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new FuzzHang('no answer in time');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = null;
    }
    return frames.shift()!;
  };
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
  s.write(encodeStartupMessage({ user: params.user, database: params.database }));
  for (const deadline = Date.now() + 10_000; ; ) {
    const f = await nextFrame(deadline);
    if (!f) throw new Error('closed during startup');
    if (f.type === B.Authentication && f.payload.readInt32BE(0) === 3) s.write(encodePassword(params.password ?? ''));
    if (f.type === B.ErrorResponse) throw new Error(`startup refused: ${decodeErrorResponse(f.payload).message}`);
    if (f.type === B.ReadyForQuery) break;
  }
  const line = (f: PgFrame): string | null => {
    switch (f.type) {
      case B.ErrorResponse: {
        const e = decodeErrorResponse(f.payload);
        return `E ${e.code}`;
      }
      case B.DataRow:
        return `D ${f.payload.subarray(2).toString('hex')}`;
      case B.CommandComplete:
        return `C ${f.payload.toString('latin1')}`;
      case B.ReadyForQuery:
        return `Z ${String.fromCharCode(f.payload[0])}`;
      case B.NoticeResponse:
      case B.ParameterStatus:
        return null; // notices (e.g. "no transaction in progress") and settings are not what is compared
      default:
        return String.fromCharCode(f.type);
    }
  };
  const readUntilEnd = async (timeoutMs: number): Promise<Transcript> => {
    const out: Transcript = [];
    const deadline = Date.now() + timeoutMs;
    let sawMarker = false;
    for (;;) {
      const f = await nextFrame(deadline);
      if (!f) {
        out.push('closed');
        return out;
      }
      const l = line(f);
      if (l !== null) out.push(l);
      if (f.type === B.DataRow && f.payload.includes('987654321')) sawMarker = true;
      if (sawMarker && f.type === B.ReadyForQuery) return out;
    }
  };
  return {
    run: (fs, timeoutMs = 10_000) => {
      s.write(Buffer.concat([...fs, encodeSync(), encodeQuery('rollback'), encodeQuery(END)]));
      return readUntilEnd(timeoutMs);
    },
    raw: async (bytes, timeoutMs = 10_000) => {
      s.write(bytes);
      s.write(Buffer.concat([encodeSync(), encodeQuery(END)]));
      return readUntilEnd(timeoutMs);
    },
    close: () => s.destroy(),
    get closed() {
      return closed;
    },
  };
}
