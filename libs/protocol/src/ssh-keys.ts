import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { PortcullisError } from './errors.js';

/**
 * OpenSSH key and certificate formats, written by hand on node:crypto (Ed25519 only for the keys we
 * make; any key type the caller brings can be certified, its fields are copied verbatim).
 * - Wire encoding: RFC 4251 §5 (uint32 length-prefixed `string`, big-endian uint32/uint64).
 * - Public key blob: RFC 8709 for ssh-ed25519 (`string "ssh-ed25519", string key(32)`).
 * - Private key file: PROTOCOL.key of OpenSSH ("openssh-key-v1\0", unencrypted).
 * - Certificates: PROTOCOL.certkeys of OpenSSH (`<type>-cert-v01@openssh.com`).
 */
export class SshKeyError extends PortcullisError {}

const MAX_BLOB = 16 * 1024;

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
}
function str(v: Buffer | string): Buffer {
  const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  return Buffer.concat([u32(b.length), b]);
}

/** Reads RFC 4251 fields; every read is bounds-checked (a short or lying blob is an SshKeyError). */
class SshReader {
  private off = 0;
  constructor(private readonly buf: Buffer) {}
  get done(): boolean {
    return this.off === this.buf.length;
  }
  uint32(): number {
    if (this.off + 4 > this.buf.length) throw new SshKeyError('truncated SSH data');
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }
  uint64(): bigint {
    if (this.off + 8 > this.buf.length) throw new SshKeyError('truncated SSH data');
    const v = this.buf.readBigUInt64BE(this.off);
    this.off += 8;
    return v;
  }
  bytes(): Buffer {
    const n = this.uint32();
    if (n > this.buf.length - this.off) throw new SshKeyError('SSH string longer than its data');
    const v = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  text(): string {
    return this.bytes().toString('utf8');
  }
  /** The raw bytes from `start` to the current position. */
  since(start: number): Buffer {
    return this.buf.subarray(start, this.off);
  }
  get position(): number {
    return this.off;
  }
  rest(): Buffer {
    const v = this.buf.subarray(this.off);
    this.off = this.buf.length;
    return v;
  }
}

function rawEd25519Public(key: KeyObject): Buffer {
  return Buffer.from(key.export({ format: 'jwk' }).x as string, 'base64url');
}
function rawEd25519Seed(key: KeyObject): Buffer {
  return Buffer.from(key.export({ format: 'jwk' }).d as string, 'base64url');
}

/** `string "ssh-ed25519", string pk` */
export function ed25519PublicBlob(publicKey: KeyObject): Buffer {
  return Buffer.concat([str('ssh-ed25519'), str(rawEd25519Public(publicKey))]);
}

/** `ssh-ed25519 AAAA… comment` of an Ed25519 public (or private) key. */
export function ed25519PublicKeyLine(key: KeyObject, comment = ''): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return `ssh-ed25519 ${ed25519PublicBlob(pub).toString('base64')}${comment ? ` ${comment}` : ''}`;
}

/** An Ed25519 private key as an unencrypted OpenSSH private key file ("-----BEGIN OPENSSH PRIVATE KEY-----"). */
export function ed25519ToOpenSshPrivateKey(privateKey: KeyObject, comment = ''): string {
  const pub = rawEd25519Public(createPublicKey(privateKey));
  const seed = rawEd25519Seed(privateKey);
  const check = randomBytes(4);
  let priv = Buffer.concat([check, check, str('ssh-ed25519'), str(pub), str(Buffer.concat([seed, pub])), str(comment)]);
  // pad to the cipher block size ("none": 8) with 1, 2, 3, …
  const pad = (8 - (priv.length % 8)) % 8;
  priv = Buffer.concat([priv, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    str('none'), str('none'), str(''), u32(1),
    str(Buffer.concat([str('ssh-ed25519'), str(pub)])),
    str(priv),
  ]);
  const b64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}-----END OPENSSH PRIVATE KEY-----\n`;
}

/** Reads an unencrypted OpenSSH Ed25519 private key file (the form ed25519ToOpenSshPrivateKey writes). */
export function ed25519FromOpenSshPrivateKey(text: string): KeyObject {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]+?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!m) throw new SshKeyError('not an OpenSSH private key');
  const buf = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (buf.subarray(0, magic.length).toString('latin1') !== magic) throw new SshKeyError('not an openssh-key-v1 key');
  const r = new SshReader(buf.subarray(magic.length));
  if (r.text() !== 'none' || r.text() !== 'none') throw new SshKeyError('encrypted OpenSSH keys are not supported here');
  r.bytes();
  if (r.uint32() !== 1) throw new SshKeyError('expected one key');
  r.bytes();
  const p = new SshReader(r.bytes());
  if (p.uint32() !== p.uint32()) throw new SshKeyError('OpenSSH key check bytes differ (wrong passphrase or corrupt key)');
  if (p.text() !== 'ssh-ed25519') throw new SshKeyError('not an Ed25519 key');
  const pub = p.bytes();
  const sk = p.bytes();
  if (pub.length !== 32 || sk.length !== 64) throw new SshKeyError('malformed Ed25519 key');
  return createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: sk.subarray(0, 32).toString('base64url'), x: pub.toString('base64url') }, format: 'jwk' });
}

/** A fresh Ed25519 key pair: `privateKey` as an OpenSSH private key file, `publicKey` as an `ssh-ed25519 …` line. */
export function generateSshEd25519(comment = ''): { privateKey: string; publicKey: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { privateKey: ed25519ToOpenSshPrivateKey(privateKey, comment), publicKey: ed25519PublicKeyLine(privateKey, comment) };
}

/** SHA-256 fingerprint of a public key blob as `ssh-keygen -l` prints it (after "SHA256:"): unpadded base64. */
export function sshKeySha256(blob: Buffer): string {
  return createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** Key types we certify (security keys and DSA are not). */
const CERTIFIABLE: Record<string, string> = {
  'ssh-ed25519': 'ssh-ed25519-cert-v01@openssh.com',
  'ssh-rsa': 'ssh-rsa-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256': 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp384': 'ecdsa-sha2-nistp384-cert-v01@openssh.com',
  'ecdsa-sha2-nistp521': 'ecdsa-sha2-nistp521-cert-v01@openssh.com',
};
const CERT_TO_KEY = Object.fromEntries(Object.entries(CERTIFIABLE).map(([k, v]) => [v, k]));

export interface SshPublicKey {
  type: string;
  blob: Buffer;
  comment: string;
}

/** Parses an `ssh-… AAAA… [comment]` line; the blob's own type must match the line's. */
export function parseSshPublicKeyLine(line: string): SshPublicKey {
  const m = /^\s*(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s+(.*))?$/.exec(line.trim());
  if (!m) throw new SshKeyError('expected an OpenSSH public key line "<type> <base64> [comment]"');
  const blob = Buffer.from(m[2]!, 'base64');
  if (blob.length > MAX_BLOB) throw new SshKeyError('public key too large');
  const r = new SshReader(blob);
  const type = r.text();
  if (type !== m[1]) throw new SshKeyError(`key type ${m[1]} does not match its data (${type.slice(0, 40)})`);
  return { type, blob, comment: m[3]?.trim() ?? '' };
}

/** The fields of a public key blob after its type name, checked per type (for certification). */
function keyFields(key: SshPublicKey): Buffer {
  const r = new SshReader(key.blob);
  r.text();
  const start = r.position;
  switch (key.type) {
    case 'ssh-ed25519':
      if (r.bytes().length !== 32) throw new SshKeyError('malformed ssh-ed25519 key');
      break;
    case 'ssh-rsa': {
      r.bytes(); // e
      const n = r.bytes();
      const bits = (n.length - (n[0] === 0 ? 1 : 0)) * 8;
      if (bits < 2048) throw new SshKeyError(`RSA keys under 2048 bits are refused (this one has about ${bits})`);
      break;
    }
    default:
      if (!key.type.startsWith('ecdsa-sha2-')) throw new SshKeyError(`key type ${key.type} cannot be certified; use ssh-ed25519, ecdsa or rsa`);
      if (r.text() !== key.type.slice('ecdsa-sha2-'.length)) throw new SshKeyError('ECDSA curve does not match the key type');
      r.bytes();
  }
  if (!r.done) throw new SshKeyError('trailing data in public key');
  return key.blob.subarray(start);
}

export interface SshCertificateRequest {
  /** the key being certified */
  publicKey: SshPublicKey;
  /** the CA's Ed25519 private key */
  caKey: KeyObject;
  keyId: string;
  principals: string[];
  validAfter: Date;
  validBefore: Date;
  /** user (1) or host (2) */
  certType?: 1 | 2;
  serial?: bigint;
  /** extension names (no data), e.g. permit-pty */
  extensions?: string[];
  criticalOptions?: Record<string, string>;
  comment?: string;
}

/** Signs an OpenSSH certificate; returns the `…-cert-v01@openssh.com AAAA… comment` line (what `*-cert.pub` holds). */
export function signSshCertificate(req: SshCertificateRequest): string {
  if (!(req.publicKey.type in CERTIFIABLE)) throw new SshKeyError(`key type ${req.publicKey.type} cannot be certified; use ssh-ed25519, ecdsa or rsa`);
  const certType = CERTIFIABLE[req.publicKey.type]!;
  const fields = keyFields(req.publicKey);
  const secs = (d: Date) => BigInt(Math.max(0, Math.floor(d.getTime() / 1000)));
  const packed = (names: string[], data: (n: string) => Buffer) =>
    Buffer.concat([...names].sort().map((n) => Buffer.concat([str(n), str(data(n))])));
  const opts = req.criticalOptions ?? {};
  const tbs = Buffer.concat([
    str(certType),
    str(randomBytes(32)),
    fields,
    u64(req.serial ?? BigInt(`0x${randomBytes(8).toString('hex')}`)),
    u32(req.certType ?? 1),
    str(req.keyId),
    str(Buffer.concat(req.principals.map((p) => str(p)))),
    u64(secs(req.validAfter)),
    u64(secs(req.validBefore)),
    str(packed(Object.keys(opts), (n) => str(opts[n]!))),
    str(packed(req.extensions ?? [], () => Buffer.alloc(0))),
    str(''),
    str(ed25519PublicBlob(createPublicKey(req.caKey))),
  ]);
  const sig = cryptoSign(null, tbs, req.caKey);
  const blob = Buffer.concat([tbs, str(Buffer.concat([str('ssh-ed25519'), str(sig)]))]);
  return `${certType} ${blob.toString('base64')}${req.comment ? ` ${req.comment}` : ''}`;
}

export interface SshCertificate {
  certType: string;
  keyType: string;
  /** the certified key's public blob (as `<keyType> <base64>` would hold it) */
  publicKeyBlob: Buffer;
  serial: bigint;
  type: 1 | 2;
  keyId: string;
  principals: string[];
  validAfter: Date;
  validBefore: Date;
  criticalOptions: Record<string, string>;
  extensions: string[];
  /** the signing CA's public key blob */
  signatureKey: Buffer;
  /** the bytes the signature covers */
  signed: Buffer;
  signatureType: string;
  signature: Buffer;
}

/** Parses an OpenSSH certificate blob (the base64-decoded middle of a `*-cert-v01@openssh.com` line). */
export function parseSshCertificate(blob: Buffer): SshCertificate {
  if (blob.length > MAX_BLOB) throw new SshKeyError('certificate too large');
  const r = new SshReader(blob);
  const certType = r.text();
  const keyType = CERT_TO_KEY[certType];
  if (!keyType) throw new SshKeyError(`unsupported certificate type ${certType.slice(0, 60)}`);
  r.bytes(); // nonce
  const fieldsStart = r.position;
  if (keyType === 'ssh-ed25519') r.bytes();
  else if (keyType === 'ssh-rsa') {
    r.bytes();
    r.bytes();
  } else {
    r.bytes();
    r.bytes();
  }
  const publicKeyBlob = Buffer.concat([str(keyType), r.since(fieldsStart)]);
  const serial = r.uint64();
  const type = r.uint32();
  if (type !== 1 && type !== 2) throw new SshKeyError('certificate type is neither user nor host');
  const keyId = r.text();
  const pr = new SshReader(r.bytes());
  const principals: string[] = [];
  while (!pr.done) principals.push(pr.text());
  const toDate = (v: bigint) => new Date(Number(v > 253402300799n ? 253402300799n : v) * 1000);
  const validAfter = toDate(r.uint64());
  const validBefore = toDate(r.uint64());
  const co = new SshReader(r.bytes());
  const criticalOptions: Record<string, string> = {};
  while (!co.done) {
    const name = co.text();
    const data = new SshReader(co.bytes());
    criticalOptions[name] = data.done ? '' : data.text();
  }
  const ex = new SshReader(r.bytes());
  const extensions: string[] = [];
  while (!ex.done) {
    extensions.push(ex.text());
    ex.bytes();
  }
  r.bytes(); // reserved
  const signatureKey = r.bytes();
  const signed = r.since(0);
  const sr = new SshReader(r.bytes());
  if (!r.done) throw new SshKeyError('trailing data in certificate');
  const signatureType = sr.text();
  const signature = sr.bytes();
  return { certType, keyType, publicKeyBlob, serial, type, keyId, principals, validAfter, validBefore, criticalOptions, extensions, signatureKey, signed, signatureType, signature };
}

/**
 * True when `cert` is signed by the Ed25519 CA whose public key line is `caPublicKeyLine`. Checks the
 * signature only: the caller checks type, principals and validity against its own clock.
 */
export function verifySshCertificateSignature(cert: SshCertificate, caPublicKeyLine: string): boolean {
  const ca = parseSshPublicKeyLine(caPublicKeyLine);
  if (ca.type !== 'ssh-ed25519' || !cert.signatureKey.equals(ca.blob) || cert.signatureType !== 'ssh-ed25519') return false;
  const r = new SshReader(ca.blob);
  r.text();
  const raw = r.bytes();
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  try {
    return cryptoVerify(null, cert.signed, key, cert.signature);
  } catch {
    return false;
  }
}

// --- keys a client presents, and their signatures (what an SSH server checks) ---

const CURVES: Record<string, { crv: string; size: number }> = {
  nistp256: { crv: 'P-256', size: 32 },
  nistp384: { crv: 'P-384', size: 48 },
  nistp521: { crv: 'P-521', size: 66 },
};

const b64u = (b: Buffer): string => b.toString('base64url');
/** An SSH mpint (two's complement, maybe with a leading 0) as the unsigned bytes a JWK wants. */
const unsigned = (b: Buffer): Buffer => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
};

/**
 * The public key of a plain (not certificate) key: its type and a KeyObject, read from the fields
 * after the type name. `r` is positioned after the type string.
 */
function readPublicKey(type: string, r: SshReader): KeyObject {
  if (type === 'ssh-ed25519') {
    const pk = r.bytes();
    if (pk.length !== 32) throw new SshKeyError('an Ed25519 key is 32 bytes');
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(pk) }, format: 'jwk' });
  }
  if (type === 'ssh-rsa') {
    const e = r.bytes();
    const n = r.bytes();
    return createPublicKey({ key: { kty: 'RSA', e: b64u(unsigned(e)), n: b64u(unsigned(n)) }, format: 'jwk' });
  }
  const m = /^ecdsa-sha2-(nistp256|nistp384|nistp521)$/.exec(type);
  if (m) {
    const curve = CURVES[m[1]!]!;
    if (r.text() !== m[1]) throw new SshKeyError('the ECDSA key names another curve');
    const q = r.bytes();
    if (q.length !== 1 + 2 * curve.size || q[0] !== 4) throw new SshKeyError('an ECDSA point must be uncompressed');
    return createPublicKey({ key: { kty: 'EC', crv: curve.crv, x: b64u(q.subarray(1, 1 + curve.size)), y: b64u(q.subarray(1 + curve.size)) }, format: 'jwk' });
  }
  throw new SshKeyError(`unsupported key type ${type}`);
}

/** A plain public key blob as a KeyObject. */
export function parseSshPublicKeyBlob(blob: Buffer): { type: string; key: KeyObject } {
  const r = new SshReader(blob);
  const type = r.text();
  return { type, key: readPublicKey(type, r) };
}

/**
 * Verifies an SSH signature blob (`string algo, string sig`) over `data` with `key` of `keyType`.
 * The algorithm must fit the key (an RSA key signs with rsa-sha2-256/512; ssh-rsa's SHA-1 is refused).
 */
export function verifySshSignature(keyType: string, key: KeyObject, data: Buffer, signatureBlob: Buffer): boolean {
  let algo: string;
  let sig: Buffer;
  try {
    const r = new SshReader(signatureBlob);
    algo = r.text();
    sig = r.bytes();
  } catch {
    return false;
  }
  try {
    if (keyType === 'ssh-ed25519') return algo === 'ssh-ed25519' && cryptoVerify(null, data, key, sig);
    if (keyType === 'ssh-rsa') {
      const hash = algo === 'rsa-sha2-256' ? 'sha256' : algo === 'rsa-sha2-512' ? 'sha512' : null;
      return hash !== null && cryptoVerify(hash, data, key, sig);
    }
    const m = /^ecdsa-sha2-nistp(256|384|521)$/.exec(keyType);
    if (m && algo === keyType) {
      const size = CURVES[`nistp${m[1]}`]!.size;
      const rs = new SshReader(sig);
      const rr = unsigned(rs.bytes());
      const ss = unsigned(rs.bytes());
      if (rr.length > size || ss.length > size) return false;
      const p1363 = Buffer.alloc(2 * size);
      rr.copy(p1363, size - rr.length);
      ss.copy(p1363, 2 * size - ss.length);
      const hash = m[1] === '256' ? 'sha256' : m[1] === '384' ? 'sha384' : 'sha512';
      return cryptoVerify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, p1363);
    }
  } catch {
    return false;
  }
  return false;
}

/** The key type named at the head of a public key blob. */
export function sshBlobType(blob: Buffer): string {
  return new SshReader(blob).text();
}
