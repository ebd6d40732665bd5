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
  /**
   * Prefilter on the value's facts (see textFacts): false means the regex cannot find a candidate
   * in it, so it is not run. It must be a necessary condition of the regex, never a guess: the spec
   * checks every builtin detector against an ungated run over generated texts. Absent (custom
   * detectors): the regex always runs.
   */
  mayMatch?: (f: TextFacts) => boolean;
  /**
   * Context words: a candidate `confirm` rejects is still taken when `context.before` matches the
   * text right before it (e.g. "SSN" a few words earlier) and `context.confirm` accepts it. For
   * values whose check is about issuance, not shape: a never-issued 9xx SSN labelled "SSN" is an SSN
   * as far as the reader is concerned (test data, a typo, a number from elsewhere).
   */
  context?: { before: RegExp; confirm: (match: string) => number };
}

/** How much text before a candidate is read for context words (a few words). */
const CONTEXT_CHARS = 48;

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
function plausibleCard(d: Uint8Array, n: number): boolean {
  const p2 = d[0] * 10 + d[1];
  const p3 = p2 * 10 + d[2];
  const p4 = p3 * 10 + d[3];
  const p6 = (p4 * 10 + d[4]) * 10 + d[5];
  if (d[0] === 4) return n === 13 || n === 16 || n === 19; // Visa
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16; // Mastercard
  if (p2 === 34 || p2 === 37) return n === 15; // Amex
  if (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649) || (p6 >= 622126 && p6 <= 622925)) return n >= 16 && n <= 19; // Discover
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19; // JCB
  if (p2 === 36 || p2 === 38 || p2 === 39 || (p3 >= 300 && p3 <= 305)) return n >= 14 && n <= 19; // Diners
  if (p2 === 62) return n >= 16 && n <= 19; // UnionPay
  if (d[0] === 6 && (p2 === 50 || (p2 >= 56 && p2 <= 69))) return n >= 12 && n <= 19; // Maestro
  return false;
}

// scratch for confirmCard (candidates have at most 19 digits and 18 separators; synchronous use only)
const cardDigits = new Uint8Array(20);
const cardGroups = new Uint8Array(20);

/** Groups as printed on cards: 4-4-4-4[-3], 4-6-5, 4-6-4 (the sizes before each separator; the last group is free). */
function cardGroupsValid(g: Uint8Array, n: number): boolean {
  if (n === 2) return g[0] === 4 && g[1] === 6;
  if (n === 3) return g[0] === 4 && g[1] === 4 && g[2] === 4;
  if (n === 4 || n === 5) return g[0] === 4 && g[1] === 4 && g[2] === 4 && g[3] === 4 && (n === 4 || (g[4] >= 1 && g[4] <= 3));
  return false;
}

function confirmCard(m: string): number {
  let n = 0;
  let sep = 0;
  let groups = 0;
  let run = 0;
  for (let i = 0; i < m.length; i++) {
    const c = m.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (n === 19) return 0;
      cardDigits[n++] = c - 48;
      run++;
      continue;
    }
    // grouped numbers: one separator kind
    if ((sep !== 0 && c !== sep) || groups === 19) return 0;
    sep = c;
    cardGroups[groups++] = run;
    run = 0;
  }
  if (n < 13) return 0;
  let sum = 0;
  let dbl = false;
  for (let k = n - 1; k >= 0; k--) {
    let d = cardDigits[k];
    if (dbl) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
    dbl = !dbl;
  }
  if (sum % 10 !== 0 || !plausibleCard(cardDigits, n)) return 0;
  if (sep !== 0 && !cardGroupsValid(cardGroups, groups)) return 0;
  return m.length;
}

/** An SSN's shape with no all-zero group (the one rule that holds for every number written as one). */
function ssnShape(m: string): number {
  return m.startsWith('000') || m.slice(4, 6) === '00' || m.slice(7, 11) === '0000' ? 0 : m.length;
}

/**
 * "SSN", "social security (number|no.|#)", "SS#" at most four words before the value (the text
 * read ends right before the candidate; an SSN-shaped word in between counts as one word, so a list
 * after one label is covered).
 */
const SSN_CONTEXT = /(?:\bssn|\bsocial[\s-]+security(?:[\s-]+(?:number|no\.?|#))?|\bss#)s?\W*(?:[\p{L}\p{N}-]+\W+){0,4}$/iu;

function confirmSsn(m: string): number {
  const area = Number(m.slice(0, 3));
  const group = m.slice(4, 6);
  const serial = m.slice(7, 11);
  if (area === 0 || area === 666 || area >= 900 || group === '00' || serial === '0000') return 0;
  return m.length;
}

/** Digits of a phone candidate, and whether its parentheses are balanced (at most one pair). */
function phoneDigits(m: string): number {
  let digits = 0;
  let open = 0;
  let close = 0;
  for (let i = 0; i < m.length; i++) {
    const c = m.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
    else if (c === 40) open++;
    else if (c === 41) close++;
  }
  return open === close && open <= 1 ? digits : -1;
}

function confirmPhone(m: string): number {
  const digits = phoneDigits(m);
  if (m.charCodeAt(0) === 43) return digits >= 8 && digits <= 15 ? m.length : 0;
  return digits >= 10 && digits <= 12 ? m.length : 0;
}

function confirmNanp(m: string): number {
  // the ten digits of the number (after an optional leading 1)
  let n = 0;
  for (let i = 0; i < m.length; i++) { const c = m.charCodeAt(i); if (c >= 48 && c <= 57) n++; }
  if (n !== 10 && n !== 11) return 0;
  let skip = n - 10;
  let k = 0;
  let area = 0; let exchange = 0; let line = 0;
  for (let i = 0; i < m.length; i++) {
    const c = m.charCodeAt(i);
    if (c < 48 || c > 57) continue;
    if (skip > 0) { skip--; continue; }
    const d = c - 48;
    if (k < 3) area = area * 10 + d;
    else if (k < 6) exchange = exchange * 10 + d;
    else line = line * 10 + d;
    k++;
  }
  if (area < 200 || exchange < 200) return 0; // first digit of area code and exchange is 2-9
  if (exchange === 555 && line >= 200) return 0; // fictional 555 numbers except 0100-0199
  return m.length;
}

function confirmNationalPhone(m: string): number {
  let d = 0;
  for (let i = 0; i < m.length; i++) { const c = m.charCodeAt(i); if (c >= 48 && c <= 57) d++; }
  return d >= 10 && d <= 11 ? m.length : 0;
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

/** IBAN lengths by the two country letters as one number (charCode(0) << 8 | charCode(1)). */
const IBAN_LENGTH_BY_CODE = new Map(Object.entries(IBAN_LENGTHS).map(([cc, n]) => [(cc.charCodeAt(0) << 8) | cc.charCodeAt(1), n]));

/** Takes exactly the country's IBAN length from the start of the candidate (spaces allowed between groups). */
function confirmIban(m: string): number {
  const len = IBAN_LENGTH_BY_CODE.get((m.charCodeAt(0) << 8) | m.charCodeAt(1));
  if (!len) return 0;
  let chars = 0;
  let i = 0;
  for (; i < m.length && chars < len; i++) if (m.charCodeAt(i) !== 32) chars++;
  if (chars !== len) return 0;
  // must end at a group boundary: end of candidate or a space next
  if (i < m.length && m.charCodeAt(i) !== 32) return 0;
  // mod 97 of the IBAN with its first four characters moved to the end, spaces skipped
  // (the candidate's first four characters are letters and digits: the regex has no space there)
  let rem = 0;
  for (let k = 4; k < i + 4; k++) {
    const c = m.charCodeAt(k < i ? k : k - i);
    if (c === 32) continue;
    if (c >= 48 && c <= 57) rem = (rem * 10 + (c - 48)) % 97;
    else if (c >= 65 && c <= 90) rem = (rem * 100 + (c - 55)) % 97;
    else return 0;
  }
  return rem === 1 ? i : 0;
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


// ---- prefilter facts: one pass over the value's UTF-8 bytes ----

/**
 * What one pass over a value's bytes learns: its digit count and which shapes occur in it, each
 * shape a necessary condition of one builtin detector's regex. Computed on the bytes, before any
 * decoding: ASCII bytes are the same characters in the decoded text, and every byte of a multi-byte
 * UTF-8 sequence (or of an invalid one, decoded as U+FFFD) is >= 0x80, which no builtin regex's
 * ASCII classes (\d, \w, [A-Z], separators) match, just as they do not match the decoded character.
 */
export interface TextFacts {
  digits: number;
  /** bits of FACT */
  flags: number;
}

export const FACT = {
  /** 13+ digits chained by at most single spaces or dashes */
  CARD_CHAIN: 1 << 0,
  /** digit runs of 3, 2, 4 joined by single dashes */
  SSN_SHAPE: 1 << 1,
  /** '+' right before 1-9 */
  PLUS_DIGIT: 1 << 2,
  /** a 3-digit run, one of '-', '.', ' ', a 4-digit run */
  NANP_SHAPE: 1 << 3,
  /** a digit run of 2-5 starting with 0, not preceded by a word character, '.', '+' or '-' */
  ZERO_RUN: 1 << 4,
  /** two uppercase letters right before two digits */
  IBAN_START: 1 << 5,
  /** a run of 20+ [A-Z0-9] starting with 'A' */
  AWS_RUN: 1 << 6,
  /** "eyJ" at least twice */
  JWT_TWICE: 1 << 7,
  /** four runs of 1-3 digits joined by single dots */
  IPV4_SHAPE: 1 << 8,
  /** '@' with a '.' somewhere after it */
  AT_DOT: 1 << 9,
  /** some byte >= 0x80: the text is not plain ASCII */
  NON_ASCII: 1 << 10,
} as const;

// byte classes; below C_LOUD the facts loop only has to skip them (their role, as the byte before a
// digit run, is read from the bytes when that run is checked)
const C_OTHER = 0;
const C_SPACE_DASH = 1;
const C_WORD = 2; // a-z and _ (\w that is not a digit or uppercase)
const C_PLUS = 3;
const C_LOUD = 4;
const C_DIGIT = 4;
const C_UPPER = 5;
const C_DOT = 6;
const C_AT = 7;
const C_HIGH = 8;
const BYTE_CLASS = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  BYTE_CLASS[b] = b >= 48 && b <= 57 ? C_DIGIT
    : b >= 65 && b <= 90 ? C_UPPER
      : b === 32 || b === 45 ? C_SPACE_DASH
        : b === 46 ? C_DOT
          : (b >= 97 && b <= 122) || b === 95 ? C_WORD
            : b === 43 ? C_PLUS
              : b === 64 ? C_AT
                : b >= 128 ? C_HIGH : C_OTHER;
}

/**
 * Facts of `bytes[start, end)` (UTF-8). Runs of digits, of uppercase letters and of the rest
 * (lowercase, spaces, most punctuation) are each consumed by a tight inner loop; the shapes are
 * checked once per digit run, from that run, the bytes around it and the two runs before it.
 */
export function textFacts(bytes: Uint8Array, start = 0, end = bytes.length): TextFacts {
  let flags = 0;
  let digits = 0;
  // the last two digit runs before the current one: [r1Start, r1End), and r2
  let r1Start = -2; let r1End = -2; let r1Len = 0;
  let r2End = -2; let r2Len = 0;
  let dotChain = 0; // runs of 1-3 digits joined by single dots, ending with r1
  let chain = 0; // digits chained by single spaces/dashes, ending with r1
  // the current [A-Z0-9] run (AWS keys)
  let keyStart = -2; let keyEnd = -2;
  let eyj = 0;
  let sawAt = false;
  let i = start;
  while (i < end) {
    const b = bytes[i];
    const cls = BYTE_CLASS[b];
    if (cls < C_LOUD) {
      do i++; while (i < end && BYTE_CLASS[bytes[i]] < C_LOUD);
      continue;
    }
    if (cls === C_DIGIT) {
      const s = i;
      do i++; while (i < end && BYTE_CLASS[bytes[i]] === C_DIGIT);
      const len = i - s;
      digits += len;
      const before = s > start ? bytes[s - 1] : -1;
      if (before === 43 && b !== 48) flags |= FACT.PLUS_DIGIT;
      if (len >= 2 && s - start >= 2 && BYTE_CLASS[bytes[s - 1]] === C_UPPER && BYTE_CLASS[bytes[s - 2]] === C_UPPER) flags |= FACT.IBAN_START;
      const glued = r1End === s - 1; // one byte between the previous run and this one
      chain = glued && (before === 32 || before === 45) ? chain + len : len;
      if (chain >= 13) flags |= FACT.CARD_CHAIN;
      if (len === 4 && glued && r1Len === 3 && (before === 45 || before === 46 || before === 32)) flags |= FACT.NANP_SHAPE;
      if (len === 4 && glued && before === 45 && r1Len === 2 && r1Start > start && bytes[r1Start - 1] === 45 && r2End === r1Start - 1 && r2Len === 3) flags |= FACT.SSN_SHAPE;
      if (b === 48 && len >= 2 && len <= 5) {
        const bc = before < 0 ? C_OTHER : BYTE_CLASS[before];
        if (bc !== C_UPPER && bc !== C_WORD && bc !== C_DOT && bc !== C_PLUS && before !== 45) flags |= FACT.ZERO_RUN;
      }
      if (len <= 3) {
        dotChain = glued && before === 46 && r1Len <= 3 && dotChain > 0 ? dotChain + 1 : 1;
        if (dotChain >= 4) flags |= FACT.IPV4_SHAPE;
      } else dotChain = 0;
      r2End = r1End; r2Len = r1Len;
      r1Start = s; r1End = i; r1Len = len;
      if (keyEnd !== s) keyStart = s;
      keyEnd = i;
      if (keyEnd - keyStart >= 20 && bytes[keyStart] === 65) flags |= FACT.AWS_RUN;
      continue;
    }
    if (cls === C_UPPER) {
      const s = i;
      do i++; while (i < end && BYTE_CLASS[bytes[i]] === C_UPPER);
      // "eyJ": a J right after lowercase "ey" starts an uppercase run
      if (b === 74 && s - start >= 2 && bytes[s - 1] === 121 && bytes[s - 2] === 101 && ++eyj >= 2) flags |= FACT.JWT_TWICE;
      if (keyEnd !== s) keyStart = s;
      keyEnd = i;
      if (keyEnd - keyStart >= 20 && bytes[keyStart] === 65) flags |= FACT.AWS_RUN;
      continue;
    }
    if (cls === C_AT) sawAt = true;
    else if (cls === C_DOT) { if (sawAt) flags |= FACT.AT_DOT; }
    else flags |= FACT.NON_ASCII; // C_HIGH
    i++;
  }
  return { digits, flags };
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';

export const BUILTIN_DETECTORS: readonly Detector[] = [
  {
    name: 'CREDIT_CARD',
    // not glued to other digits (a space-separated neighbour is fine: "… 123-45-6789 4111 …")
    // (the lookbehinds follow the first digits so the regex engine can scan for a digit first)
    regex: /\d(?<!\d\d)(?<!\d-\d)\d(?:[ -]?\d){10,17}(?!\d)(?!-\d)/g,
    confirm: confirmCard,
    mayMatch: (f) => (f.flags & FACT.CARD_CHAIN) !== 0,
  },
  {
    name: 'US_SSN',
    regex: /(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])/g,
    confirm: confirmSsn,
    mayMatch: (f) => (f.flags & FACT.SSN_SHAPE) !== 0,
    context: { before: SSN_CONTEXT, confirm: ssnShape },
  },
  {
    name: 'EMAIL',
    // internationalised local parts and domains are letters too
    regex: /(?<![\p{L}\p{N}._%+-])[\p{L}\p{N}](?:[\p{L}\p{N}._%+-]{0,62}[\p{L}\p{N}_%+-])?@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+\p{L}{2,24}(?![\p{L}\p{N}-]|\.[\p{L}\p{N}])/gu,
    mayMatch: (f) => (f.flags & FACT.AT_DOT) !== 0,
  },
  {
    name: 'PHONE',
    regex: /(?<![\w+])\+[1-9](?:[ .-]?\(?\d\)?){7,14}(?![\w-])/g,
    confirm: confirmPhone,
    mayMatch: (f) => f.digits >= 8 && (f.flags & FACT.PLUS_DIGIT) !== 0,
  },
  {
    // North American: (415) 555-0132, 415-555-0132, 415.555.0132, 1-415-555-0132
    name: 'PHONE',
    regex: /(?<![\w.+-])(?:1[ .-])?(?:\(\d{3}\) ?\d{3}-\d{4}|\d{3}-\d{3}-\d{4}|\d{3}\.\d{3}\.\d{4}|\d{3} \d{3} \d{4})(?![\w-]|\.\d)/g,
    confirm: confirmNanp,
    mayMatch: (f) => (f.flags & FACT.NANP_SHAPE) !== 0,
  },
  {
    // European national forms with a trunk 0: 020 7946 0958, 07700 900123, 030 12345678, 01 23 45 67 89
    name: 'PHONE',
    regex: /(?<![\w.+-])(?:0[1-9](?:[ .]\d{2}){4}|0\d{2,4} \d{3,4} ?\d{3,4})(?![\w-]|[ .]\d|\.\w)/g,
    confirm: confirmNationalPhone,
    mayMatch: (f) => f.digits >= 10 && (f.flags & FACT.ZERO_RUN) !== 0,
  },
  {
    name: 'IBAN',
    regex: /(?<![A-Za-z0-9])[A-Z]{2}\d{2} ?[A-Z0-9]{4}(?: ?[A-Z0-9]{1,4}){2,7}(?![a-z0-9])/g,
    confirm: confirmIban,
    mayMatch: (f) => (f.flags & FACT.IBAN_START) !== 0,
  },
  {
    name: 'AWS_ACCESS_KEY',
    regex: /(?<![A-Za-z0-9/+])(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9/+])/g,
    mayMatch: (f) => (f.flags & FACT.AWS_RUN) !== 0,
  },
  {
    name: 'JWT',
    regex: /(?<![\w-])eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*(?![\w-])/g,
    confirm: confirmJwt,
    mayMatch: (f) => (f.flags & FACT.JWT_TWICE) !== 0,
  },
  {
    name: 'IPV4',
    regex: new RegExp(`(?<![\\w.])(?:${OCTET}\\.){3}${OCTET}(?!\\w|\\.\\d|-[A-Za-z])`, 'g'),
    mayMatch: (f) => (f.flags & FACT.IPV4_SHAPE) !== 0,
  },
];

/** Whether any of `detectors` may find something in a text with these facts (a custom detector always may). */
export function anyMayMatch(detectors: readonly Detector[], facts: TextFacts): boolean {
  for (const d of detectors) if (!d.mayMatch || d.mayMatch(facts)) return true;
  return false;
}

/**
 * Runs `detectors` over `text`; returns non-overlapping findings in order (earliest, then longest, wins).
 * `facts` are textFacts of the text's UTF-8 bytes (computed here when not given); a detector whose
 * prefilter rules it out is skipped. `prefilter: false` runs every regex (the spec's reference).
 */
export function findAll(text: string, detectors: readonly Detector[], facts?: TextFacts, prefilter = true): Finding[] {
  const f = prefilter ? facts ?? textFacts(Buffer.from(text, 'utf8')) : null;
  let found: Finding[] | null = null;
  for (const d of detectors) {
    if (f && d.mayMatch && !d.mayMatch(f)) continue;
    const re = d.regex;
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      if (m[0].length === 0) { re.lastIndex++; continue; }
      let len = d.confirm ? d.confirm(m[0]) : m[0].length;
      if (len === 0 && d.context && d.context.before.test(text.slice(Math.max(0, m.index - CONTEXT_CHARS), m.index))) len = d.context.confirm(m[0]);
      if (len > 0) (found ??= []).push({ start: m.index, end: m.index + len, detector: d.name });
    }
  }
  if (!found) return [];
  if (found.length === 1) return found;
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Finding[] = [];
  let end = -1;
  for (const x of found) {
    if (x.start >= end) { out.push(x); end = x.end; }
  }
  return out;
}
