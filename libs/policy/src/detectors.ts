/**
 * Content detectors for masking. Each finds candidates with a regular expression and confirms them
 * with a check (Luhn for cards, mod-97 for IBANs, SSA rules for SSNs, a JSON header for JWTs) so
 * lookalikes — order numbers, dates, version strings — stay untouched.
 */

export const BUILTIN_DETECTOR_NAMES = ['CREDIT_CARD', 'EMAIL', 'US_SSN', 'PHONE', 'IBAN', 'AWS_ACCESS_KEY', 'JWT', 'IPV4'] as const;
export type BuiltinDetectorName = (typeof BUILTIN_DETECTOR_NAMES)[number];

export interface Detector {
  name: string;
  /** global regex; candidates */
  regex: RegExp;
  /** confirms a candidate; may narrow it (returns the confirmed length from the match start) */
  confirm?: (match: string) => number;
  /** cheap test on the whole value (and its digit count): false means this detector cannot match */
  mayMatch?: (s: string, digits: number) => boolean;
}

export interface Finding {
  start: number;
  end: number;
  detector: string;
}

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let dbl = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (dbl) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 === 0;
}

/** Issuer prefixes of the card networks; a Luhn-valid number outside them is most likely not a card. */
function plausibleCard(d: string): boolean {
  const n = d.length;
  const p2 = Number(d.slice(0, 2));
  const p3 = Number(d.slice(0, 3));
  const p4 = Number(d.slice(0, 4));
  const p6 = Number(d.slice(0, 6));
  if (d[0] === '4') return n === 13 || n === 16 || n === 19; // Visa
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16; // Mastercard
  if (p2 === 34 || p2 === 37) return n === 15; // Amex
  if (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649) || (p6 >= 622126 && p6 <= 622925)) return n >= 16 && n <= 19; // Discover
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19; // JCB
  if (p2 === 36 || p2 === 38 || p2 === 39 || (p3 >= 300 && p3 <= 305)) return n >= 14 && n <= 19; // Diners
  if (p2 === 62) return n >= 16 && n <= 19; // UnionPay
  if (d[0] === '6' && (p2 === 50 || (p2 >= 56 && p2 <= 69))) return n >= 12 && n <= 19; // Maestro
  return false;
}

function confirmCard(m: string): number {
  let digits = '';
  let sep = 0;
  let groups = '';
  let run = 0;
  for (let i = 0; i < m.length; i++) {
    const c = m.charCodeAt(i);
    if (c >= 48 && c <= 57) { digits += m[i]; run++; continue; }
    // grouped numbers: one separator kind
    if (sep !== 0 && c !== sep) return 0;
    sep = c;
    groups += `${run}-`;
    run = 0;
  }
  if (digits.length < 13 || digits.length > 19 || !luhnValid(digits) || !plausibleCard(digits)) return 0;
  // groups as printed on cards: 4-4-4-4[-3], 4-6-5, 4-6-4
  if (sep !== 0 && !/^4-4-4-4-([1-3]-)?$|^4-6-$|^4-4-4-$/.test(groups)) return 0;
  return m.length;
}

function confirmSsn(m: string): number {
  const area = Number(m.slice(0, 3));
  const group = m.slice(4, 6);
  const serial = m.slice(7, 11);
  if (area === 0 || area === 666 || area >= 900 || group === '00' || serial === '0000') return 0;
  return m.length;
}

function confirmPhone(m: string): number {
  const digits = m.replace(/\D/g, '').length;
  if (m.startsWith('+')) return digits >= 8 && digits <= 15 && balancedParens(m) ? m.length : 0;
  return digits >= 10 && digits <= 12 && balancedParens(m) ? m.length : 0;
}

function balancedParens(m: string): boolean {
  const open = m.split('(').length - 1;
  return open === m.split(')').length - 1 && open <= 1;
}

function confirmNanp(m: string): number {
  const d = m.replace(/\D/g, '');
  const ten = d.length === 11 ? d.slice(1) : d;
  if (ten.length !== 10 || ten[0] < '2' || ten[3] < '2') return 0;
  if (ten.slice(3, 6) === '555' && ten.slice(6) >= '0200') return 0; // fictional 555 numbers except 0100-0199
  return m.length;
}

const IBAN_LENGTHS: Record<string, number> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, BY: 28, CH: 21, CR: 22, CY: 28,
  CZ: 24, DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18,
  GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32,
  LI: 21, LT: 20, LU: 20, LV: 21, MC: 27, MD: 24, ME: 22, MK: 19, MR: 27, MT: 31, MU: 30, NL: 18, NO: 15, PK: 24,
  PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, SA: 24, SC: 31, SE: 24, SI: 19, SK: 24, SM: 27, ST: 25, SV: 28,
  TL: 23, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24, XK: 20,
};

export function ibanChecksumValid(iban: string): boolean {
  const s = iban.slice(4) + iban.slice(0, 4);
  let rem = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) rem = (rem * 10 + (c - 48)) % 97;
    else if (c >= 65 && c <= 90) rem = (rem * 100 + (c - 55)) % 97;
    else return false;
  }
  return rem === 1;
}

/** Takes exactly the country's IBAN length from the start of the candidate (spaces allowed between groups). */
function confirmIban(m: string): number {
  const len = IBAN_LENGTHS[m.slice(0, 2)];
  if (!len) return 0;
  let chars = 0;
  let i = 0;
  for (; i < m.length && chars < len; i++) if (m[i] !== ' ') chars++;
  if (chars !== len) return 0;
  // must end at a group boundary: end of candidate or a space next
  if (i < m.length && m[i] !== ' ') return 0;
  const iban = m.slice(0, i).replace(/ /g, '');
  return ibanChecksumValid(iban) ? i : 0;
}

function confirmJwt(m: string): number {
  const header = m.slice(0, m.indexOf('.'));
  try {
    const h = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as unknown;
    return h && typeof h === 'object' && ('alg' in h || 'typ' in h) ? m.length : 0;
  } catch {
    return 0;
  }
}


const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';

export const BUILTIN_DETECTORS: readonly Detector[] = [
  {
    name: 'CREDIT_CARD',
    // not glued to other digits (a space-separated neighbour is fine: "… 123-45-6789 4111 …")
    // (the lookbehinds follow the first digits so the regex engine can scan for a digit first)
    regex: /\d(?<!\d\d)(?<!\d-\d)\d(?:[ -]?\d){10,17}(?!\d)(?!-\d)/g,
    confirm: confirmCard,
    mayMatch: (_s, digits) => digits >= 13,
  },
  {
    name: 'US_SSN',
    regex: /(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])/g,
    confirm: confirmSsn,
    mayMatch: (s, digits) => digits >= 9 && s.includes('-'),
  },
  {
    name: 'EMAIL',
    // internationalised local parts and domains are letters too
    regex: /(?<![\p{L}\p{N}._%+-])[\p{L}\p{N}](?:[\p{L}\p{N}._%+-]{0,62}[\p{L}\p{N}_%+-])?@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+\p{L}{2,24}(?![\p{L}\p{N}-]|\.[\p{L}\p{N}])/gu,
    mayMatch: (s) => s.includes('@'),
  },
  {
    name: 'PHONE',
    regex: /(?<![\w+])\+[1-9](?:[ .-]?\(?\d\)?){7,14}(?![\w-])/g,
    confirm: confirmPhone,
    mayMatch: (s, digits) => digits >= 8 && s.includes('+'),
  },
  {
    // North American: (415) 555-0132, 415-555-0132, 415.555.0132, 1-415-555-0132
    name: 'PHONE',
    regex: /(?<![\w.+-])(?:1[ .-])?(?:\(\d{3}\) ?\d{3}-\d{4}|\d{3}-\d{3}-\d{4}|\d{3}\.\d{3}\.\d{4}|\d{3} \d{3} \d{4})(?![\w-]|\.\d)/g,
    confirm: confirmNanp,
    mayMatch: (_s, digits) => digits >= 10,
  },
  {
    // European national forms with a trunk 0: 020 7946 0958, 07700 900123, 030 12345678, 01 23 45 67 89
    name: 'PHONE',
    regex: /(?<![\w.+-])(?:0[1-9](?:[ .]\d{2}){4}|0\d{2,4} \d{3,4} ?\d{3,4})(?![\w-]|[ .]\d|\.\w)/g,
    confirm: (m) => { const d = m.replace(/\D/g, '').length; return d >= 10 && d <= 11 ? m.length : 0; },
    mayMatch: (_s, digits) => digits >= 10,
  },
  {
    name: 'IBAN',
    regex: /(?<![A-Za-z0-9])[A-Z]{2}\d{2} ?[A-Z0-9]{4}(?: ?[A-Z0-9]{1,4}){2,7}(?![a-z0-9])/g,
    confirm: confirmIban,
    mayMatch: (_s, digits) => digits >= 4,
  },
  {
    name: 'AWS_ACCESS_KEY',
    regex: /(?<![A-Za-z0-9/+])(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9/+])/g,
    mayMatch: (s) => s.length >= 20 && s.includes('A'),
  },
  {
    name: 'JWT',
    regex: /(?<![\w-])eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*(?![\w-])/g,
    confirm: confirmJwt,
    mayMatch: (s) => s.includes('eyJ'),
  },
  {
    name: 'IPV4',
    regex: new RegExp(`(?<![\\w.])(?:${OCTET}\\.){3}${OCTET}(?!\\w|\\.\\d|-[A-Za-z])`, 'g'),
    mayMatch: (s, digits) => digits >= 4 && s.includes('.'),
  },
];

/** Runs `detectors` over `text`; returns non-overlapping findings in order (earliest, then longest, wins). */
export function findAll(text: string, detectors: readonly Detector[]): Finding[] {
  let found: Finding[] | null = null;
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
  }
  for (const d of detectors) {
    if (d.mayMatch && !d.mayMatch(text, digits)) continue;
    const re = d.regex;
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      if (m[0].length === 0) { re.lastIndex++; continue; }
      const len = d.confirm ? d.confirm(m[0]) : m[0].length;
      if (len > 0) (found ??= []).push({ start: m.index, end: m.index + len, detector: d.name });
    }
  }
  if (!found) return [];
  if (found.length === 1) return found;
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Finding[] = [];
  let end = -1;
  for (const f of found) {
    if (f.start >= end) { out.push(f); end = f.end; }
  }
  return out;
}
