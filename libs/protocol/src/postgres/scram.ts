/**
 * The client side of SCRAM-SHA-256 (RFC 5802 / RFC 7677) as Postgres speaks it, and the md5
 * password hash: the gateway authenticates to upstream servers as a client.
 * https://www.postgresql.org/docs/current/sasl-authentication.html
 *
 * Pure node:crypto and no I/O: feed it the server's SASL messages, send what it returns.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { ScramError } from './errors.js';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
export const SCRAM_SHA_256_PLUS = 'SCRAM-SHA-256-PLUS';

export interface ScramChannelBinding {
  /** Postgres supports only tls-server-end-point (RFC 5929): the hash of the server's certificate. */
  type: 'tls-server-end-point';
  data: Buffer;
}

export interface ScramClientOptions {
  /**
   * Channel binding data when the upstream connection is TLS. With it, SCRAM-SHA-256-PLUS is used
   * when the server offers it (else the gs2 header says 'y': "I could bind, you did not offer it").
   */
  channelBinding?: ScramChannelBinding;
  /** The mechanisms the server listed in AuthenticationSASL (picks PLUS or not). */
  serverMechanisms?: readonly string[];
  /** Client nonce (printable ASCII without ','); random 18 bytes base64 by default. For test vectors. */
  nonce?: string;
  /** Refuse iteration counts above this (a hostile server could stall the event loop). Default 1,000,000. */
  maxIterations?: number;
}

const ScramState = { Initial: 'initial', FirstSent: 'first-sent', FinalSent: 'final-sent', Done: 'done' } as const;
type ScramState = (typeof ScramState)[keyof typeof ScramState];

/** SaltedPassword is the expensive part (PBKDF2); reconnects to one upstream reuse it. */
const saltedCache = new Map<string, Buffer>();
const SALTED_CACHE_MAX = 128;

function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  const key = `${iterations}:${salt.toString('base64')}:${createHash('sha256').update(password).digest('base64')}`;
  const hit = saltedCache.get(key);
  if (hit) return hit;
  const v = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  if (saltedCache.size >= SALTED_CACHE_MAX) saltedCache.delete(saltedCache.keys().next().value as string);
  saltedCache.set(key, v);
  return v;
}

const hmac = (key: Buffer, data: string | Buffer): Buffer => createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

/**
 * One SCRAM-SHA-256 exchange:
 * ```
 * const scram = new ScramClient(user, password, { serverMechanisms });
 * send(encodeSASLInitialResponse(scram.mechanism, scram.clientFirstMessage()));
 * // AuthenticationSASLContinue(data):
 * send(encodeSASLResponse(scram.handleServerFirst(data.toString())));
 * // AuthenticationSASLFinal(data):
 * scram.verifyServerFinal(data.toString()); // throws ScramError if the server cannot prove it knew the password
 * ```
 */
export class ScramClient {
  readonly mechanism: string;
  private readonly gs2Header: string;
  private readonly clientNonce: string;
  private readonly password: string;
  private readonly maxIterations: number;
  private state: ScramState = ScramState.Initial;
  private clientFirstBare = '';
  private expectedServerSignature: Buffer | null = null;

  constructor(
    readonly username: string,
    password: string,
    private readonly options: ScramClientOptions = {},
  ) {
    this.password = saslPrep(password);
    this.maxIterations = options.maxIterations ?? 1_000_000;
    const cb = options.channelBinding;
    const offered = options.serverMechanisms;
    if (offered && !offered.includes(SCRAM_SHA_256) && !(cb && offered.includes(SCRAM_SHA_256_PLUS))) {
      throw new ScramError('bad_server_message', `server offers none of the SASL mechanisms this client speaks: ${offered.join(', ') || '(none)'}`);
    }
    if (cb && (!offered || offered.includes(SCRAM_SHA_256_PLUS))) {
      this.mechanism = SCRAM_SHA_256_PLUS;
      this.gs2Header = `p=${cb.type},,`;
    } else {
      this.mechanism = SCRAM_SHA_256;
      this.gs2Header = cb ? 'y,,' : 'n,,';
    }
    this.clientNonce = options.nonce ?? randomBytes(18).toString('base64');
    if (!/^[\x21-\x2b\x2d-\x7e]+$/.test(this.clientNonce)) throw new ScramError('bad_state', 'client nonce must be printable ASCII without ","');
  }

  /** True once the server's signature was verified. */
  get done(): boolean {
    return this.state === ScramState.Done;
  }

  /** client-first-message: gs2 header + `n=<user>,r=<nonce>` (Postgres ignores the user name: the startup one counts). */
  clientFirstMessage(): string {
    this.expect(ScramState.Initial, 'clientFirstMessage');
    this.clientFirstBare = `n=${this.username.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${this.clientNonce}`;
    this.state = ScramState.FirstSent;
    return this.gs2Header + this.clientFirstBare;
  }

  /** Takes server-first-message (`r=...,s=...,i=...`), returns client-final-message with the proof. */
  handleServerFirst(serverFirst: string): string {
    this.expect(ScramState.FirstSent, 'handleServerFirst');
    const attrs = parseAttributes(serverFirst, 'server-first-message');
    if (attrs[0]?.[0] === 'm') throw new ScramError('bad_server_message', 'server-first-message asks for an unsupported SCRAM extension');
    const [r, s, i] = [attrs[0], attrs[1], attrs[2]];
    if (r?.[0] !== 'r' || s?.[0] !== 's' || i?.[0] !== 'i') throw new ScramError('bad_server_message', 'server-first-message is not r=...,s=...,i=...');
    const nonce = r[1];
    if (!nonce.startsWith(this.clientNonce) || nonce.length <= this.clientNonce.length) {
      throw new ScramError('bad_server_message', 'server nonce does not extend the client nonce');
    }
    if (!/^[\x21-\x2b\x2d-\x7e]+$/.test(nonce)) throw new ScramError('bad_server_message', 'server nonce has characters SCRAM does not allow');
    const salt = decodeBase64(s[1], 'salt');
    if (!/^[1-9][0-9]{0,9}$/.test(i[1])) throw new ScramError('bad_server_message', `iteration count ${JSON.stringify(i[1])} is not a positive integer`);
    const iterations = Number(i[1]);
    if (iterations > this.maxIterations) throw new ScramError('bad_server_message', `iteration count ${iterations} is above the cap of ${this.maxIterations}`);

    const cbData = this.options.channelBinding && this.mechanism === SCRAM_SHA_256_PLUS ? this.options.channelBinding.data : Buffer.alloc(0);
    const channelBinding = Buffer.concat([Buffer.from(this.gs2Header), cbData]).toString('base64');
    const withoutProof = `c=${channelBinding},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;

    const salted = saltedPassword(this.password, salt, iterations);
    const clientKey = hmac(salted, 'Client Key');
    const clientSignature = hmac(sha256(clientKey), authMessage);
    const proof = Buffer.allocUnsafe(clientKey.length);
    for (let k = 0; k < proof.length; k++) proof[k] = clientKey[k] ^ clientSignature[k];
    this.expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    this.state = ScramState.FinalSent;
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Checks server-final-message (`v=<signature>`); a server error (`e=...`) or a wrong signature throws. */
  verifyServerFinal(serverFinal: string): void {
    this.expect(ScramState.FinalSent, 'verifyServerFinal');
    const attrs = parseAttributes(serverFinal, 'server-final-message');
    const first = attrs[0];
    if (first?.[0] === 'e') throw new ScramError('server_error', `server rejected the SCRAM exchange: ${first[1]}`);
    if (first?.[0] !== 'v') throw new ScramError('bad_server_message', 'server-final-message has no verifier');
    const got = decodeBase64(first[1], 'server signature');
    const want = this.expectedServerSignature as Buffer;
    if (got.length !== want.length || !timingSafeEqual(got, want)) {
      throw new ScramError('server_signature_mismatch', 'server signature does not match: the server does not know the password (or a man in the middle)');
    }
    this.state = ScramState.Done;
  }

  private expect(state: ScramState, step: string): void {
    if (this.state !== state) throw new ScramError('bad_state', `${step} called in state ${this.state}`);
  }
}

function parseAttributes(msg: string, what: string): [string, string][] {
  if (typeof msg !== 'string' || msg.length === 0) throw new ScramError('bad_server_message', `${what} is empty`);
  return msg.split(',').map((part) => {
    if (!/^[A-Za-z]=/.test(part)) throw new ScramError('bad_server_message', `${what} has a malformed attribute`);
    return [part[0], part.slice(2)];
  });
}

function decodeBase64(s: string, what: string): Buffer {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s) || s.length === 0) {
    throw new ScramError('bad_server_message', `${what} is not base64`);
  }
  return Buffer.from(s, 'base64');
}

/** The password for an md5 server: 'md5' + md5hex(md5hex(password + user) + salt). */
export function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password, 'utf8').update(user, 'utf8').digest('hex');
  return 'md5' + createHash('md5').update(inner, 'utf8').update(salt).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// SASLprep (RFC 4013), as Postgres applies it (pg_saslprep): ASCII passwords pass unchanged; any
// other password is mapped, NFKC-normalised and checked, and if it contains prohibited code points
// the raw password is used instead (what both libpq and the server do, so both sides agree).
// Unicode tables here follow the JS engine's Unicode version rather than 3.2: a password made of
// code points assigned after Unicode 3.2 may be prepared differently than by Postgres.

const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/g; // C.1.2 → U+0020
// These tables list combining and control code points on purpose (RFC 3454 B.1, C.2).
// eslint-disable-next-line no-misleading-character-class
const MAPPED_TO_NOTHING = /[\u00ad\u034f\u1806\u180b-\u180d\u200b-\u200d\u2060\ufe00-\ufe0f\ufeff]/g; // B.1
// C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9 and unassigned (A.1).
const PROHIBITED =
  // eslint-disable-next-line no-misleading-character-class, no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u0340\u0341\u06dd\u070f\u180e\u200c-\u200f\u2028-\u202e\u2060-\u2063\u206a-\u206f\u2ff0-\u2ffb\ue000-\uf8ff\ufdd0-\ufdef\ufeff\ufff9-\ufffd\ufffe\uffff]|[\u{1d173}-\u{1d17a}\u{e0001}\u{e0020}-\u{e007f}\u{f0000}-\u{ffffd}\u{100000}-\u{10fffd}]|[\u{1fffe}\u{1ffff}\u{2fffe}\u{2ffff}\u{3fffe}\u{3ffff}\u{4fffe}\u{4ffff}\u{5fffe}\u{5ffff}\u{6fffe}\u{6ffff}\u{7fffe}\u{7ffff}\u{8fffe}\u{8ffff}\u{9fffe}\u{9ffff}\u{afffe}\u{affff}\u{bfffe}\u{bffff}\u{cfffe}\u{cffff}\u{dfffe}\u{dffff}\u{efffe}\u{effff}]|\p{Cs}|\p{Cn}/u;
// RFC 3454 D.1 (RandALCat) approximated by the right-to-left scripts' blocks.
const RAND_AL = /[\u05be\u05c0\u05c3\u05d0-\u05ea\u05f0-\u05f4\u061b\u061f\u0621-\u064a\u066d-\u06d5\u06e5\u06e6\u06fa-\u06fe\u0700-\u070d\u0710-\u072c\u0780-\u07b1\u200f\ufb1d-\ufdfc\ufe70-\ufefc]/u;
const L_CAT = /[A-Za-z\u00aa\u00b5\u00ba\u00c0-\u02b8\u0370-\u0482\u0904-\u0d6f\u0e01-\u0e30\u1100-\u11f9\u1e00-\u1fbc\u3041-\u30ff\u3400-\u9fff\uac00-\ud7a3]/u;

export function saslPrep(password: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(password)) return password;
  const prepared = password.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC');
  if (prepared.length === 0 || PROHIBITED.test(prepared)) return password;
  if (RAND_AL.test(prepared)) {
    const chars = [...prepared];
    if (L_CAT.test(prepared) || !RAND_AL.test(chars[0]) || !RAND_AL.test(chars[chars.length - 1])) return password;
  }
  return prepared;
}
