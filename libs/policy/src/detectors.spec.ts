import { describe, expect, it } from 'vitest';
import { BUILTIN_DETECTORS, FACT, findAll, textFacts, type Detector } from './detectors.js';

const JWT = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';

/** Every regex run, confirmed, nothing skipped: what the prefilter must never change. */
function ungated(text: string, d: Detector): number {
  return findAll(text, [d], undefined, false).length;
}

const facts = (s: string) => textFacts(Buffer.from(s, 'utf8'));

// [name, text, the fact that must be set] — each a real finding, the shapes near the edges first
const shapes: [string, string, number][] = [
  ['card at the very start', '4111111111111111', FACT.CARD_CHAIN],
  ['card at the very end', 'x 4111 1111 1111 1111', FACT.CARD_CHAIN],
  ['card with dashes', '4111-1111-1111-1111', FACT.CARD_CHAIN],
  ['amex 4-6-5', '3782 822463 10005', FACT.CARD_CHAIN],
  ['SSN alone', '123-45-6789', FACT.SSN_SHAPE],
  ['SSN after text', 'ssn:123-45-6789.', FACT.SSN_SHAPE],
  ['E.164 at the start', '+14155550132', FACT.PLUS_DIGIT],
  ['E.164 with parens', 'x +1 (415) 555-0132', FACT.PLUS_DIGIT],
  ['NANP parens', '(415) 555-0132', FACT.NANP_SHAPE],
  ['NANP dots', '415.555.0132', FACT.NANP_SHAPE],
  ['NANP spaces', '415 555 0132', FACT.NANP_SHAPE],
  ['NANP with 1-', '1-415-555-0132', FACT.NANP_SHAPE],
  ['UK national', '020 7946 0958', FACT.ZERO_RUN],
  ['French national', '(01 23 45 67 89)', FACT.ZERO_RUN],
  ['dotted national', '01.23.45.67.89', FACT.ZERO_RUN],
  ['mobile 07700', 'tel:07700 900123', FACT.ZERO_RUN],
  ['IBAN compact', 'GB82WEST12345698765432', FACT.IBAN_START],
  ['IBAN grouped', 'DE89 3704 0044 0532 0130 00', FACT.IBAN_START],
  ['AWS key at the start', 'AKIAIOSFODNN7EXAMPLE', FACT.AWS_RUN],
  ['AWS key after =', 'key=ASIAY34FZKBOKMUTVV7A', FACT.AWS_RUN],
  ['AWS key with digits', 'AKIA1234567890123456', FACT.AWS_RUN],
  ['JWT', `Bearer ${JWT}`, FACT.JWT_TWICE],
  ['IPv4', '10.0.0.1', FACT.IPV4_SHAPE],
  ['IPv4 with port', 'from 192.168.1.10:5432', FACT.IPV4_SHAPE],
  ['email', 'a@b.io', FACT.AT_DOT],
  ['unicode email', 'zoë@example.de', FACT.AT_DOT],
  ['non-ASCII', 'Grüße', FACT.NON_ASCII],
];

// [name, text, the fact that must stay clear] — lookalikes the prefilter can already rule out
const clear: [string, string, number][] = [
  ['12-digit chain', '4111 1111 1111', FACT.CARD_CHAIN],
  ['double space breaks a chain', '4111 1111  1111 1111', FACT.CARD_CHAIN],
  ['ISO date', '2024-01-15', FACT.SSN_SHAPE | FACT.NANP_SHAPE | FACT.IPV4_SHAPE],
  ['plus zero', '+0 415 555', FACT.PLUS_DIGIT],
  ['three part version', 'v1.24.3', FACT.IPV4_SHAPE],
  ['long dotted numbers', '1234.1.2.3', FACT.IPV4_SHAPE],
  ['zero run after a dash', '415-555-0101', FACT.ZERO_RUN],
  ['zero run after a letter', 'v0123 4567 890', FACT.ZERO_RUN],
  ['lowercase country', 'de89370400440532013000', FACT.IBAN_START],
  ['19-char key', 'AKIAIOSFODNN7EXAMPL', FACT.AWS_RUN],
  ['key not starting with A', 'XAKIAIOSFODNN7EXAMPLEX', FACT.AWS_RUN],
  ['one eyJ', 'eyJhbGciOiJIUzI1NiJ9', FACT.JWT_TWICE],
  ['dot only before @', 'a.b@localhost', FACT.AT_DOT],
  ['ASCII', 'plain text 123', FACT.NON_ASCII],
];

describe('textFacts', () => {
  it.each(shapes)('sets the fact for %s', (_name, text, fact) => {
    expect(facts(text).flags & fact).toBe(fact);
  });
  it.each(clear)('leaves the fact clear for %s', (_name, text, fact) => {
    expect(facts(text).flags & fact).toBe(0);
  });
  it('counts digits and reads a sub-range the same as a copy of it', () => {
    const buf = Buffer.from('\x01{"ssn": "123-45-6789", "ip": "10.0.0.1"}');
    expect(textFacts(buf, 1)).toEqual(textFacts(Buffer.from(buf.subarray(1))));
    expect(textFacts(buf, 1).digits).toBe(14);
    // a digit run right at the start of the range has no byte before it (the \x01 is outside)
    const zero = Buffer.from('+020');
    expect(textFacts(zero, 1).flags & FACT.ZERO_RUN).toBe(FACT.ZERO_RUN);
    expect(textFacts(zero, 0).flags & FACT.ZERO_RUN).toBe(0);
  });
});

/** Deterministic PRNG (mulberry32) so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// pieces that build findings, near-misses and the separators between them
const PIECES = [
  '4111', '1111', '4111111111111111', '5500 0000 0000 0004', '3782 822463 10005', '6011111111111117', '4', '0', '1', '9',
  '123', '45', '6789', '000', '666', '-', ' ', '  ', '.', '..', '+', '+1', '+44', '(', ')', '(415)', '415', '555', '0132', '0199',
  '020', '7946', '0958', '07700', '900123', '01', '23', 'DE89', '3704', '0044', '0532', '0130', '00', 'GB82', 'WEST', 'ZZ89',
  'AKIA', 'ASIA', 'IOSFODNN7EXAMPLE', 'A', 'X', 'Z', 'eyJ', 'eyJhbGciOiJIUzI1NiJ9', 'eyJzdWIiOiIxIn0', 'abc_', '192', '168', '10', '255', '256',
  '@', 'alice', 'example', 'com', 'io', 'x', '_', '/', ':', ',', ';', '=', 'ü', 'zoë', '✓', '\t', '\n', '"', '\\', 'v', 'e', 'y', 'J',
  // whole findings, so that neighbours test their edges
  '123-45-6789', '078-05-1120', 'alice@example.com', 'bob.smith+tag@mail.corp.example.co.uk', 'zoë@example.de', '415-555-0132',
  '(415) 555-0132', '415.555.0132', '415 555 0132', '+44 20 7946 0958', '+14155550132', '020 7946 0958', '01 23 45 67 89',
  'GB82WEST12345698765432', 'DE89 3704 0044 0532 0130 00', 'FR1420041010050500013M02606', 'AKIAIOSFODNN7EXAMPLE',
  'ASIAY34FZKBOKMUTVV7A', JWT, 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig', '192.168.1.10', '10.0.0.1', '4111 1111 1111 1111',
];

function generated(count: number, seed: number): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    let s = '';
    const n = 1 + Math.floor(r() * 14);
    for (let k = 0; k < n; k++) s += PIECES[Math.floor(r() * PIECES.length)];
    out.push(s);
  }
  return out;
}

describe('prefilter (mayMatch on textFacts)', () => {
  const texts = [
    ...shapes.map((r) => r[1]),
    ...clear.map((r) => r[1]),
    ...generated(40_000, 20261202),
    ...generated(10_000, 7),
  ];

  it('never hides a finding: each detector that finds something on a text is allowed to run on it', () => {
    const misses: string[] = [];
    const found = BUILTIN_DETECTORS.map(() => 0);
    for (const text of texts) {
      const f = facts(text);
      BUILTIN_DETECTORS.forEach((d, i) => {
        const n = ungated(text, d);
        found[i] += n;
        if (n > 0 && !d.mayMatch!(f)) misses.push(`${d.name} ${JSON.stringify(text)}`);
      });
    }
    expect(misses).toEqual([]);
    // the generated texts really exercise every detector (each regex source with its count)
    const few = BUILTIN_DETECTORS.map((d, i) => [d.regex.source.slice(0, 30), found[i]] as const).filter(([, n]) => n < 20);
    expect(few).toEqual([]);
  });

  it('gated findAll equals the ungated one', () => {
    for (const text of texts) {
      expect(findAll(text, BUILTIN_DETECTORS)).toEqual(findAll(text, BUILTIN_DETECTORS, undefined, false));
    }
  });

  it('rules most generated texts out for most detectors', () => {
    let skipped = 0;
    let total = 0;
    for (const text of texts) {
      const f = facts(text);
      for (const d of BUILTIN_DETECTORS) { total++; if (!d.mayMatch!(f)) skipped++; }
    }
    expect(skipped / total).toBeGreaterThan(0.5);
  });
});
