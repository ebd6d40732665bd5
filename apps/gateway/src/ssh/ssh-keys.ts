import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { parseSshCertificate, parseSshPublicKeyLine, verifySshCertificateSignature, type SshCertificate } from '@portcullis/protocol';

/**
 * What the SSH listener checks of a client's key: signatures by plain keys in their wire forms
 * (RFC 4253 §6.6, RFC 8709, RFC 5656, RFC 8332) and user certificates (parsed and CA-verified by
 * @portcullis/protocol's ssh-keys). Pure: no sockets. Every length is checked against
 * what is left of the buffer, so a hostile blob is a `SshKeyError`, never a crash or an over-read.
 */

export class SshKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SshKeyError';
  }
}

/** Reads SSH wire types (uint32, uint64, string) from a buffer; throws SshKeyError past its end. */
export class SshReader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  get offset(): number {
    return this.pos;
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  uint32(): number {
    if (this.pos + 4 > this.buf.length) throw new SshKeyError('truncated key data');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint64(): bigint {
    if (this.pos + 8 > this.buf.length) throw new SshKeyError('truncated key data');
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  string(): Buffer {
    const n = this.uint32();
    if (n > this.buf.length - this.pos) throw new SshKeyError('a length field runs past the end of the key data');
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  text(): string {
    return this.string().toString('utf8');
  }
}

/** The blob of an OpenSSH public key line (`ssh-ed25519 AAAA… comment`). */
export function publicKeyBlob(line: string): Buffer {
  return parseSshPublicKeyLine(line).blob;
}

/** The key type named at the head of a public key blob. */
export function blobType(blob: Buffer): string {
  return new SshReader(blob).text();
}

/** Host key algorithms a client offers so that the server presents a key of one of these types. */
export function hostKeyAlgorithmsFor(types: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const t of types) {
    if (t === 'ssh-rsa' || t.startsWith('rsa-sha2-')) {
      out.add('rsa-sha2-512');
      out.add('rsa-sha2-256');
      out.add('ssh-rsa');
    } else {
      out.add(t);
    }
  }
  return [...out];
}

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
    const pk = r.string();
    if (pk.length !== 32) throw new SshKeyError('an Ed25519 key is 32 bytes');
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(pk) }, format: 'jwk' });
  }
  if (type === 'ssh-rsa') {
    const e = r.string();
    const n = r.string();
    return createPublicKey({ key: { kty: 'RSA', e: b64u(unsigned(e)), n: b64u(unsigned(n)) }, format: 'jwk' });
  }
  const m = /^ecdsa-sha2-(nistp256|nistp384|nistp521)$/.exec(type);
  if (m) {
    const curve = CURVES[m[1]!]!;
    if (r.text() !== m[1]) throw new SshKeyError('the ECDSA key names another curve');
    const q = r.string();
    if (q.length !== 1 + 2 * curve.size || q[0] !== 4) throw new SshKeyError('an ECDSA point must be uncompressed');
    return createPublicKey({ key: { kty: 'EC', crv: curve.crv, x: b64u(q.subarray(1, 1 + curve.size)), y: b64u(q.subarray(1 + curve.size)) }, format: 'jwk' });
  }
  throw new SshKeyError(`unsupported key type ${type}`);
}

/** A plain public key blob as a KeyObject. */
export function parsePublicKeyBlob(blob: Buffer): { type: string; key: KeyObject } {
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
    sig = r.string();
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
      const rr = unsigned(rs.string());
      const ss = unsigned(rs.string());
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

const CERT_SUFFIX = '-cert-v01@openssh.com';

export function isCertificateType(type: string): boolean {
  return type.endsWith(CERT_SUFFIX);
}

/** Why a user certificate is refused (the message is safe to show the client). */
export class CertificateRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CertificateRefused';
  }
}

/**
 * Checks a user certificate as sshd's TrustedUserCAKeys would: signed by `caLine` (the pool's user
 * CA), a user certificate, for `principal`, valid now, no critical option the gateway does not
 * enforce. Returns the certificate and its key; the caller then checks the client's signature with
 * the key and verifies the key id (a gateway credential).
 */
export function checkUserCertificate(blob: Buffer, caLine: string, principal: string, now = Date.now()): { cert: SshCertificate; keyType: string; key: KeyObject } {
  let cert: SshCertificate;
  let key: { type: string; key: KeyObject };
  try {
    cert = parseSshCertificate(blob);
    key = parsePublicKeyBlob(cert.publicKeyBlob);
  } catch (err) {
    throw new CertificateRefused(`invalid certificate: ${(err as Error).message}`);
  }
  if (!verifySshCertificateSignature(cert, caLine)) throw new CertificateRefused("the certificate is not signed by this gateway pool's user CA");
  if (cert.type !== 1) throw new CertificateRefused('not a user certificate');
  if (!cert.principals.includes(principal)) throw new CertificateRefused(`the certificate is not valid for connection "${principal}"`);
  if (now < cert.validAfter.getTime()) throw new CertificateRefused('the certificate is not valid yet');
  if (now >= cert.validBefore.getTime()) throw new CertificateRefused('the certificate has expired');
  const options = Object.keys(cert.criticalOptions);
  // force-command / source-address would need enforcing; the api sets none: refuse what would not be honoured
  if (options.length) throw new CertificateRefused(`the certificate carries a critical option the gateway does not enforce (${options.join(', ')})`);
  return { cert, keyType: key.type, key: key.key };
}
