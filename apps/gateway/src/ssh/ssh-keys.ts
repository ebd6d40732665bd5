import type { KeyObject } from 'node:crypto';
import {
  parseSshCertificate, parseSshPublicKeyBlob, parseSshPublicKeyLine, sshBlobType, verifySshCertificateSignature, verifySshSignature, type SshCertificate,
} from '@portcullis/protocol';

export { verifySshSignature };

/**
 * What the SSH listener checks of a client's key: user certificates against the pool's user CA, for
 * the connection, now. The wire formats (key blobs, signatures, certificates: RFC 4253 §6.6, RFC 8709,
 * RFC 5656, RFC 8332, OpenSSH PROTOCOL.certkeys) are read by @portcullis/protocol's ssh-keys, where
 * every length is checked against what is left of the buffer. Pure: no sockets.
 */

/** The blob of an OpenSSH public key line (`ssh-ed25519 AAAA… comment`). */
export function publicKeyBlob(line: string): Buffer {
  return parseSshPublicKeyLine(line).blob;
}

/** The key type named at the head of a public key blob. */
export const blobType = sshBlobType;

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
    key = parseSshPublicKeyBlob(cert.publicKeyBlob);
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
