import type { Hasher } from './hash-cache.js';
import type { RowOutput } from './masking.types.js';
import type { CompiledRule } from './rules.js';

/**
 * The strategies, on one value: `redact`, `partial` (letters and digits but the last `keepLast`,
 * an email's first character and domain kept), `hash` (keyed, normalised per detector), `null`;
 * and partial masking straight from a DataRow's bytes (the relay's hot path).
 */


const EMAIL_WHOLE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function isAlnum(c: string): boolean {
  const x = c.charCodeAt(0);
  return (x >= 48 && x <= 57) || (x >= 65 && x <= 90) || (x >= 97 && x <= 122) || (x > 127 && /[\p{L}\p{N}]/u.test(c));
}

export function partialMask(s: string, keepLast: number): string {
  const at = s.lastIndexOf('@');
  if (at > 0 && EMAIL_WHOLE.test(s)) {
    if (isAscii(s, at)) return s[0] + '*'.repeat(at - 1) + s.slice(at);
    const local = [...s.slice(0, at)];
    return local[0] + '*'.repeat(local.length - 1) + s.slice(at);
  }
  if (isAscii(s, s.length)) return partialAscii(s, keepLast);
  const chars = [...s];
  let alnum = 0;
  for (const c of chars) if (isAlnum(c)) alnum++;
  let keep = alnum > keepLast ? keepLast : 0;
  for (let i = chars.length - 1; i >= 0; i--) {
    if (!isAlnum(chars[i])) continue;
    if (keep > 0) { keep--; continue; }
    chars[i] = '*';
  }
  return chars.join('');
}

function isAscii(s: string, end: number): boolean {
  for (let i = 0; i < end; i++) if (s.charCodeAt(i) > 127) return false;
  return true;
}

export function isAlnumCode(x: number): boolean {
  return (x >= 48 && x <= 57) || (x >= 65 && x <= 90) || (x >= 97 && x <= 122);
}

/** partialMask of an ASCII string: one character per code unit, no code point splitting needed. */
function partialAscii(s: string, keepLast: number): string {
  let alnum = 0;
  for (let i = 0; i < s.length; i++) if (isAlnumCode(s.charCodeAt(i))) alnum++;
  // the last `keep` letters/digits stay: find where the kept tail starts
  let keep = alnum > keepLast ? keepLast : 0;
  let tail = s.length;
  while (keep > 0) { tail--; if (isAlnumCode(s.charCodeAt(tail))) keep--; }
  let out = '';
  for (let i = 0; i < tail; i++) out += isAlnumCode(s.charCodeAt(i)) ? '*' : s[i];
  return out + s.slice(tail);
}


export function hashValue(s: string, hasher: Hasher, detector?: string): string {
  let v = s;
  if (detector === 'CREDIT_CARD' || detector === 'US_SSN' || detector === 'PHONE') v = s.replace(/\D/g, '');
  else if (detector === 'EMAIL') v = s.toLowerCase();
  return hasher.hash(v);
}

export function applyStrategy(rule: CompiledRule, s: string, hasher: Hasher, detector?: string): string | null {
  switch (rule.strategy) {
    case 'null': return null;
    case 'redact': return rule.token;
    case 'partial': return partialMask(s, rule.keepLast);
    case 'hash': return hashValue(s, hasher, detector);
  }
}


/**
 * partialMask of the UTF-8 text in bytes[start, end), written straight into `out` as value i, when
 * the text is ASCII with no '@' (then partialMask is partialAscii: one character per byte, no email
 * form). false: not that case, nothing written.
 */
export function partialAsciiBytes(bytes: Uint8Array, start: number, end: number, keepLast: number, out: RowOutput, i: number): boolean {
  let alnum = 0;
  for (let p = start; p < end; p++) {
    const k = ASCII_KIND[bytes[p]];
    if (k === 2) return false;
    alnum += k;
  }
  // from the end: the last `keep` letters and digits stay, the ones before become '*'
  let keep = alnum > keepLast ? keepLast : 0;
  const at = out.reserve(i, end - start) - start;
  const buf = out.buf;
  for (let p = end - 1; p >= start; p--) {
    const b = bytes[p];
    if (ASCII_KIND[b] === 0) buf[at + p] = b;
    else if (keep > 0) { buf[at + p] = b; keep--; }
    else buf[at + p] = 42;
  }
  return true;
}

/** Per byte, for partialAsciiBytes: 1 an ASCII letter or digit (isAlnumCode), 2 not ASCII or '@', 0 the rest. */
const ASCII_KIND = new Uint8Array(256);
for (let b = 0; b < 256; b++) ASCII_KIND[b] = b > 127 || b === 64 ? 2 : isAlnumCode(b) ? 1 : 0;

/** Whether bytes[start, end) are all ASCII. */
export function asciiBytes(bytes: Uint8Array, start: number, end: number): boolean {
  for (let p = start; p < end; p++) if (bytes[p] > 127) return false;
  return true;
}
