import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import {
  BackendMessageType as B,
  PgFramer,
  decodeAuthentication,
  decodeBackendKeyData,
  decodeErrorResponse,
  decodeParameterStatus,
  encodePassword,
  encodeSSLRequest,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  encodeStartupMessage,
  md5Password,
  ScramClient,
  type PgFrame,
} from '@portcullis/protocol';
import type { ResolvedConnection } from '../config/config-store.js';
import { MessageReader } from './message-reader.js';
import { SocketReads } from './socket-reads.js';

/** The upstream connection failed. `message` is for logs only: it may name the target's host or user. */
export class UpstreamError extends Error {
  /** the server's own message, when it sent an ErrorResponse (may be shown for a refused setting) */
  readonly serverMessage: string | undefined;
  constructor(
    message: string,
    /** SQLSTATE the server sent, when it sent one */
    readonly sqlState?: string,
    options?: { cause?: unknown; serverMessage?: string },
  ) {
    super(message, options);
    this.name = 'UpstreamError';
    this.serverMessage = options?.serverMessage;
  }
}

export interface UpstreamSession {
  socket: Socket | TLSSocket;
  /** Holds any bytes the server sent after its first ReadyForQuery. */
  framer: PgFramer;
  parameters: Map<string, string>;
  backendKey: { pid: number; secret: Buffer } | null;
  tls: boolean;
  /** Plain TCP: the socket reads into a reused buffer; the relay must set a sink (socket-reads.ts). TLS: null, use 'data'. */
  reads: SocketReads | null;
}

/**
 * Opens and authenticates a connection to the target with the credentials the gateway holds
 * (trust, cleartext, md5, SCRAM-SHA-256; TLS per the connection's `tls`), up to its first
 * ReadyForQuery. `params` are extra startup parameters passed on from the client (application_name...).
 */
export async function connectUpstream(conn: ResolvedConnection, params: Record<string, string>, timeoutMs = 10_000): Promise<UpstreamSession> {
  const deadline = Date.now() + timeoutMs;
  const left = (): number => Math.max(1, deadline - Date.now());
  // A socket that may turn into TLS keeps Node's own reads: TLS takes over the handle's reading.
  const reads = conn.tls === 'disable' ? new SocketReads() : null;
  let socket: Socket | TLSSocket = await openTcp(conn.host, conn.port, left(), reads);
  let tls = false;
  try {
    if (conn.tls !== 'disable') {
      socket.write(encodeSSLRequest());
      const { byte } = await MessageReader.readByte(socket, left());
      if (byte === 0x53 /* S */) {
        socket = await upgradeTls(socket, conn, left());
        tls = true;
      } else if (byte === 0x4e /* N */) {
        if (conn.tls !== 'prefer') throw new UpstreamError('the target does not accept TLS but the connection requires it');
      } else {
        throw new UpstreamError(`unexpected answer to SSLRequest: 0x${byte.toString(16)}`);
      }
    }
    const reader = new MessageReader(socket);
    socket.resume();
    socket.write(encodeStartupMessage({ ...params, user: conn.username, database: conn.database }));
    const parameters = new Map<string, string>();
    let backendKey: UpstreamSession['backendKey'] = null;
    let scram: ScramClient | null = null;
    for (;;) {
      const f: PgFrame = await reader.next(left());
      switch (f.type) {
        case B.Authentication: {
          const auth = decodeAuthentication(f.payload);
          switch (auth.auth) {
            case 'Ok':
              break;
            case 'CleartextPassword':
              socket.write(encodePassword(requirePassword(conn)));
              break;
            case 'MD5Password':
              socket.write(encodePassword(md5Password(conn.username, requirePassword(conn), auth.salt)));
              break;
            case 'SASL': {
              if (!auth.mechanisms.includes('SCRAM-SHA-256')) throw new UpstreamError(`unsupported SASL mechanisms: ${auth.mechanisms.join(', ')}`);
              // Without channel binding: the gs2 header says 'n'; Postgres accepts it unless the client demands binding.
              scram = new ScramClient(conn.username, requirePassword(conn), { serverMechanisms: ['SCRAM-SHA-256'] });
              socket.write(encodeSASLInitialResponse(scram.mechanism, scram.clientFirstMessage()));
              break;
            }
            case 'SASLContinue':
              if (!scram) throw new UpstreamError('SASLContinue without SASL');
              socket.write(encodeSASLResponse(scram.handleServerFirst(auth.data.toString('utf8'))));
              break;
            case 'SASLFinal':
              if (!scram) throw new UpstreamError('SASLFinal without SASL');
              scram.verifyServerFinal(auth.data.toString('utf8'));
              break;
            default:
              throw new UpstreamError(`unsupported authentication method ${auth.auth}`);
          }
          break;
        }
        case B.ParameterStatus: {
          const p = decodeParameterStatus(f.payload);
          parameters.set(p.name, p.value);
          break;
        }
        case B.BackendKeyData: {
          const k = decodeBackendKeyData(f.payload);
          backendKey = { pid: k.pid, secret: Buffer.from(k.secretKey) };
          break;
        }
        case B.ErrorResponse: {
          const e = decodeErrorResponse(f.payload);
          throw new UpstreamError(`target refused the connection: ${e.code} ${e.message}`, e.code, { serverMessage: e.message });
        }
        case B.NoticeResponse:
        case B.NegotiateProtocolVersion:
          break;
        case B.ReadyForQuery:
          reader.detach();
          socket.on('error', () => undefined); // the relay attaches its own handlers
          return { socket, framer: reader.framer, parameters, backendKey, tls, reads };
        default:
          throw new UpstreamError(`unexpected message 0x${f.type.toString(16)} during startup`);
      }
    }
  } catch (err) {
    socket.destroy();
    if (err instanceof UpstreamError) throw err;
    throw new UpstreamError(`cannot connect to the target: ${(err as Error).message}`, undefined, { cause: err });
  }
}

function requirePassword(conn: ResolvedConnection): string {
  if (conn.password === null) throw new UpstreamError('the target asks for a password and the connection has none');
  return conn.password;
}

/** Resolves with `s` (paused) once it emits `ready`; a timeout or an error rejects with an UpstreamError. */
function whenReady<S extends Socket>(s: S, ready: 'connect' | 'secureConnect', timeoutMs: number, what: { timeout: string; failed: string }): Promise<S> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      s.destroy();
      reject(new UpstreamError(what.timeout));
    }, timeoutMs);
    const onErr = (err: Error): void => {
      clearTimeout(t);
      reject(new UpstreamError(`${what.failed}: ${err.message}`, undefined, { cause: err }));
    };
    s.once(ready, () => {
      clearTimeout(t);
      s.off('error', onErr);
      s.pause();
      resolve(s);
    });
    s.once('error', onErr);
  });
}

function openTcp(host: string, port: number, timeoutMs: number, reads: SocketReads | null): Promise<Socket> {
  const socket = netConnect({ host, port, noDelay: true, ...(reads ? { onread: reads.onread } : {}) });
  reads?.attach(socket);
  return whenReady(socket, 'connect', timeoutMs, {
    timeout: 'timed out connecting to the target',
    failed: 'cannot reach the target',
  });
}

function upgradeTls(socket: Socket, conn: ResolvedConnection, timeoutMs: number): Promise<TLSSocket> {
  const verify = conn.tls === 'verify-full';
  const s = tlsConnect({ socket, servername: /^[\d.:]+$/.test(conn.host) ? undefined : conn.host, rejectUnauthorized: verify });
  return whenReady(s, 'secureConnect', timeoutMs, { timeout: 'timed out in the TLS handshake with the target', failed: 'TLS with the target failed' });
}
