import { PortcullisError } from './errors.js';

/** Text that is not the one canonical unpadded base64url form of some bytes. */
export class Base64UrlError extends PortcullisError {}

const ALPHABET = /^[A-Za-z0-9_-]*$/;

/**
 * Decodes base64url strictly (RFC 7515 §2 / RFC 4648 §5 without padding): only the 64 characters, no
 * `=`, no whitespace, no length that no byte string has (length % 4 === 1), and no non-zero trailing
 * bits. So each byte string has exactly one accepted spelling: `abc`, `abc=`, `abc ` and `abd` (same
 * bytes, other trailing bits) are never all "the same token". Node's and atob's decoders accept all
 * of those.
 */
export function decodeBase64UrlStrict(text: string): Buffer {
  if (!ALPHABET.test(text)) throw new Base64UrlError('not base64url: only A-Z a-z 0-9 - _ without padding or spaces');
  if (text.length % 4 === 1) throw new Base64UrlError('not base64url: impossible length');
  const bytes = Buffer.from(text, 'base64url');
  if (bytes.toString('base64url') !== text) throw new Base64UrlError('not base64url: non-canonical trailing bits');
  return bytes;
}

/**
 * A compact JWS/JWT as RFC 7515 §7.1 spells it: three strict base64url parts, none empty but the
 * signature of an unsecured token (which every verifier here refuses anyway). Throws Base64UrlError.
 */
export function assertCompactJws(token: string): void {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[0] || !parts[1]) throw new Base64UrlError('not a compact JWS: three dot-separated parts expected');
  for (const p of parts) decodeBase64UrlStrict(p);
}
