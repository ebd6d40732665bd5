/**
 * A raw Postgres v3 client over net.Socket built only on the codec in libs/protocol/src/postgres:
 * tests use it to speak the protocol byte for byte (to a real server, or to the gateway) without
 * a driver hiding what goes over the wire.
 *
 * ```ts
 * const c = await PgWireClient.connect({ host, port });
 * const hello = await c.startup({ user: 'alice', database: 'demo', password: 's3cret' }); // any auth method
 * const r = await c.query('select 1');  // r.rows[0][0]?.toString() === '1'
 * await c.close();
 * ```
 */
import { connect, type Socket } from 'node:net';
import {
  decodeBackendMessage,
  encodePassword,
  encodeQuery,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  encodeStartupMessage,
  encodeTerminate,
  md5Password,
  PgFramer,
  ScramClient,
  type BackendMessage,
  type PgFrame,
  type PgNotice,
  type RowField,
} from '../../libs/protocol/src/postgres/index.js';

export type ReceivedMessage = BackendMessage & { frame: Buffer };

export interface QueryResult {
  fields: RowField[];
  rows: (Buffer | null)[][];
  tags: string[];
  notices: PgNotice[];
  error: PgNotice | null;
  /** Everything received up to and including ReadyForQuery. */
  messages: ReceivedMessage[];
}

export class PgWireClient {
  private readonly framer = new PgFramer({ startup: false, from: 'server' });
  private readonly queue: ReceivedMessage[] = [];
  private waiter: { resolve: () => void; reject: (e: unknown) => void } | null = null;
  private failure: unknown = null;
  /** ScramClient of the last SCRAM exchange (tests inspect it). */
  scram: ScramClient | null = null;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.framer.push(chunk);
        for (let f: PgFrame | null = this.framer.next(); f; f = this.framer.next()) this.queue.push({ ...decodeBackendMessage(f), frame: f.frame });
      } catch (e) {
        this.fail(e);
        socket.destroy();
      }
      this.wake();
    });
    socket.on('end', () => {
      try {
        this.framer.end();
        this.fail(new Error('server closed the connection'));
      } catch (e) {
        this.fail(e);
      }
      this.wake();
    });
    socket.on('error', (e) => {
      this.fail(e);
      this.wake();
    });
    socket.on('close', () => {
      this.fail(new Error('connection closed'));
      this.wake();
    });
  }

  static connect(opts: { host: string; port: number }): Promise<PgWireClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(opts.port, opts.host);
      socket.setNoDelay(true);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new PgWireClient(socket));
      });
      socket.once('error', reject);
    });
  }

  private fail(e: unknown): void {
    this.failure ??= e;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.resolve();
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next message from the server (rejects on close, protocol error or timeout). */
  async next(timeoutMs = 10_000): Promise<ReceivedMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.queue.shift();
      if (m) return m;
      if (this.failure) throw this.failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message from the server within ${timeoutMs} ms`);
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, left);
        this.waiter = {
          resolve: () => {
            clearTimeout(t);
            resolve();
          },
          reject,
        };
      });
    }
  }

  /** Messages up to and including the first of kind `kind`. */
  async until(kind: BackendMessage['kind']): Promise<ReceivedMessage[]> {
    const out: ReceivedMessage[] = [];
    for (;;) {
      const m = await this.next();
      out.push(m);
      if (m.kind === kind) return out;
    }
  }

  /**
   * StartupMessage, then whatever authentication the server asks for (trust, cleartext, md5,
   * SCRAM-SHA-256), then everything up to ReadyForQuery. An ErrorResponse rejects with it.
   */
  async startup(params: { user: string; database?: string; password?: string; [k: string]: string | undefined }): Promise<ReceivedMessage[]> {
    const { password, ...rest } = params;
    const startupParams: Record<string, string> = {};
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) startupParams[k] = v;
    this.send(encodeStartupMessage(startupParams));
    const seen: ReceivedMessage[] = [];
    for (;;) {
      const m = await this.next();
      seen.push(m);
      if (m.kind === 'ErrorResponse') throw Object.assign(new Error(`${m.code}: ${m.message}`), { notice: m, messages: seen });
      if (m.kind === 'ReadyForQuery') return seen;
      if (m.kind !== 'Authentication') continue;
      switch (m.auth) {
        case 'Ok':
          break;
        case 'CleartextPassword':
          this.send(encodePassword(requirePassword(password)));
          break;
        case 'MD5Password':
          this.send(encodePassword(md5Password(params.user, requirePassword(password), m.salt)));
          break;
        case 'SASL':
          this.scram = new ScramClient(params.user, requirePassword(password), { serverMechanisms: m.mechanisms });
          this.send(encodeSASLInitialResponse(this.scram.mechanism, this.scram.clientFirstMessage()));
          break;
        case 'SASLContinue':
          this.send(encodeSASLResponse(scramOf(this.scram).handleServerFirst(m.data.toString('utf8'))));
          break;
        case 'SASLFinal':
          scramOf(this.scram).verifyServerFinal(m.data.toString('utf8'));
          break;
        default:
          throw new Error(`authentication method ${m.auth} is not supported by this test client`);
      }
    }
  }

  /** A simple-protocol query: everything up to ReadyForQuery, sorted into a result. */
  async query(sql: string): Promise<QueryResult> {
    this.send(encodeQuery(sql));
    return collect(await this.until('ReadyForQuery'));
  }

  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end(encodeTerminate());
      setTimeout(() => this.socket.destroy(), 2000).unref();
    });
  }
}

export function collect(messages: ReceivedMessage[]): QueryResult {
  const r: QueryResult = { fields: [], rows: [], tags: [], notices: [], error: null, messages };
  for (const m of messages) {
    if (m.kind === 'RowDescription') r.fields = m.fields;
    else if (m.kind === 'DataRow') r.rows.push(m.values);
    else if (m.kind === 'CommandComplete') r.tags.push(m.tag);
    else if (m.kind === 'NoticeResponse') r.notices.push(m);
    else if (m.kind === 'ErrorResponse') r.error = m;
  }
  return r;
}

function requirePassword(p: string | undefined): string {
  if (p === undefined) throw new Error('the server asked for a password and none was given');
  return p;
}

function scramOf(s: ScramClient | null): ScramClient {
  if (!s) throw new Error('SASL message before AuthenticationSASL');
  return s;
}
