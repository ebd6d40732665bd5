import { describe, expect, it } from 'vitest';
import { parsePolicyDocument } from './policy-document.js';
import { createStreamMasker, escapeEnd, type TerminalStreamMasker } from './stream-masker.js';

const hmacKey = Buffer.alloc(32, 7);
const doc = parsePolicyDocument({
  name: 'p',
  masking: [{ name: 'pii', detectors: ['CREDIT_CARD', 'US_SSN', 'EMAIL', 'AWS_ACCESS_KEY', 'JWT'], strategy: 'redact' }],
});
const masker = (maxHoldBack?: number): TerminalStreamMasker => createStreamMasker(doc, { hmacKey, maxHoldBack })!;

/** Feeds byte chunks, returns what the client would see. */
function run(chunks: (string | Buffer)[], m = masker()): string {
  let out = '';
  for (const c of chunks) out += m.push(c);
  return out + m.flush();
}

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
const KEY = ['-----BEGIN OPENSSH PRIVATE KEY-----', 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW', 'QyNTUxOQAAACCr2bG0T2W6q0ZLQ8Q1sV3q9uYh5oXk9YkF2t7q4d1b2wAAAJg=', '-----END OPENSSH PRIVATE KEY-----'];

describe('stream masker', () => {
  it.each<[string, string, string]>([
    ['card', 'pay 4111 1111 1111 1111 now\r\n', 'pay [REDACTED] now\r\n'],
    ['ssn', 'ssn: 123-45-6789\n', 'ssn: [REDACTED]\n'],
    ['email', 'mail alice@example.com ok\n', 'mail [REDACTED] ok\n'],
    ['aws key', 'AKIAIOSFODNN7EXAMPLE\n', '[REDACTED]\n'],
    ['jwt', `token=${JWT}\n`, 'token=[REDACTED]\n'],
    ['two on a line', 'a@b.io 4111111111111111\n', '[REDACTED] [REDACTED]\n'],
    ['nothing', 'order 1234-5678 v1.2.3\n', 'order 1234-5678 v1.2.3\n'],
    ['colour around a value', '\x1b[31m4111111111111111\x1b[0m\n', '\x1b[31m[REDACTED]\x1b[0m\n'],
    ['colour inside a value', 'alice@\x1b[1mexample.com\x1b[0m\n', '[REDACTED]\x1b[1m\x1b[0m\n'],
    ['a card in colour groups', '\x1b[31m4111\x1b[0m 1111 \x1b[1m1111 1111\x1b[0m\n', '\x1b[31m[REDACTED]\x1b[0m\x1b[1m\x1b[0m\n'],
    ['escape digits are no card', '\x1b[38;5;196m\x1b[48;2;4;1;1;1;1;1;1;1;1;1;1;1;1;1m\n', '\x1b[38;5;196m\x1b[48;2;4;1;1;1;1;1;1;1;1;1;1;1;1;1m\n'],
    ['osc title with an email', '\x1b]0;alice@example.com\x07$ \n', '\x1b]0;alice@example.com\x07$ \n'],
    ['multibyte around', 'é 4111111111111111 ü\n', 'é [REDACTED] ü\n'],
    ['private key', `${KEY.join('\n')}\nafter\n`, `${KEY[0]}\n[REDACTED]\n[REDACTED]\n${KEY[3]}\nafter\n`],
    ['private key with CRLF', `${KEY.join('\r\n')}\r\n`, `${KEY[0]}\r\n[REDACTED]\r\n[REDACTED]\r\n${KEY[3]}\r\n`],
    ['private key inline (JSON)', `{"key":"${KEY.join('\\n')}"}\n`, `{"key":"${KEY[0]}[REDACTED]${KEY[3]}"}\n`],
    ['a BEGIN line that is not followed by a key', 'x.pem:-----BEGIN PRIVATE KEY-----\nnot a key line!\n', 'x.pem:-----BEGIN PRIVATE KEY-----\nnot a key line!\n'],
  ])('%s: whole, split at every offset, byte by byte', (_name, input, expected) => {
    expect(run([input])).toBe(expected);
    const bytes = Buffer.from(input, 'utf8');
    for (let i = 1; i < bytes.length; i++) expect(run([bytes.subarray(0, i), bytes.subarray(i)]), `split at ${i}`).toBe(expected);
    expect(run([...bytes].map((b) => Buffer.from([b])))).toBe(expected);
  });

  it('sends finished lines at once and holds only the unfinished line', () => {
    const m = masker();
    expect(m.push('line one\nline two 4111 1111')).toBe('line one\n');
    expect(m.pending).toBe('line two 4111 1111'.length);
    expect(m.push(' 1111 1111\n')).toBe('line two [REDACTED]\n');
    expect(m.pending).toBe(0);
  });

  it('flush (idle or end) sends what is held', () => {
    const m = masker();
    expect(m.push('$ ')).toBe('');
    expect(m.flush()).toBe('$ ');
    expect(m.push('4111111111111111')).toBe('');
    expect(m.flush()).toBe('[REDACTED]');
    expect(m.masked).toBe(1);
    expect([...m.findings.values()]).toEqual([{ detector: 'CREDIT_CARD', rule: 'pii', count: 1 }]);
  });

  it('bounds hold-back on a line with no end; a value at the cut is held whole', () => {
    const m = masker(100);
    const long = 'x'.repeat(250);
    const out1 = m.push(long);
    expect(out1.length).toBe(150);
    expect(m.pending).toBe(100);
    const out2 = m.push(` 4111 1111 1111 1111${'y'.repeat(90)}`);
    const all = out1 + out2 + m.flush();
    expect(all).toBe(`${long} [REDACTED]${'y'.repeat(90)}`);
    expect(m.pending).toBe(0);
  });

  it('never splits an escape sequence or a UTF-8 character, whatever the chunks', () => {
    const m = masker(64);
    const seq = '\x1b[38;5;196m';
    let out = '';
    for (let i = 0; i < 40; i++) out += m.push(`${'a'.repeat(10)}${seq}é`);
    out += m.flush();
    expect(out).toBe(`${'a'.repeat(10)}${seq}é`.repeat(40));
    expect(out).not.toContain('\ufffd');
  });

  it('an incomplete UTF-8 sequence at the end becomes U+FFFD only on flush', () => {
    const m = masker();
    expect(m.push(Buffer.from([0x61, 0xc3]))).toBe('');
    expect(m.flush()).toBe('a\ufffd');
  });

  it('masking keeps the line count', () => {
    const input = Array.from({ length: 50 }, (_, i) => `${i} alice${i}@example.com 4111 1111 1111 1111\r\n`).join('');
    const out = run([input]);
    expect(out.split('\n').length).toBe(input.split('\n').length);
    expect(out).not.toContain('@example.com');
  });

  it('a redact token with control characters cannot change the terminal', () => {
    const d = parsePolicyDocument({ name: 'p', masking: [{ name: 'x', detectors: ['EMAIL'], strategy: 'redact', token: '\x1b[2J\nGONE\r' }] });
    expect(run(['a@b.io\n'], createStreamMasker(d, { hmacKey })!)).toBe('[2JGONE\n');
  });

  it('partial and hash strategies', () => {
    const d = parsePolicyDocument({ name: 'p', masking: [{ name: 'c', detectors: ['CREDIT_CARD'], strategy: 'partial' }, { name: 'e', detectors: ['EMAIL'], strategy: 'hash' }] });
    const out = run(['4111 1111 1111 1111 a@b.io\n'], createStreamMasker(d, { hmacKey })!);
    expect(out).toMatch(/^\*{4} \*{4} \*{4} 1111 \S+\n$/);
    expect(out).not.toContain('a@b.io');
  });

  it('no detector rules: no masker', () => {
    expect(createStreamMasker(parsePolicyDocument({ name: 'p', masking: [{ name: 'e', columns: ['email'], strategy: 'partial' }] }), { hmacKey })).toBeNull();
  });

  it.each<[string, number, number]>([
    ['\x1b[0m', 0, 4],
    ['\x1b[', 0, -1],
    ['\x1b]0;title\x07x', 0, 10],
    ['\x1b]0;title\x1b\\x', 0, 11],
    ['\x1b]0;tit', 0, -1],
    ['\x1bM', 0, 2],
    ['\x1b', 0, -1],
  ])('escapeEnd(%j)', (text, at, end) => {
    expect(escapeEnd(text, at)).toBe(end);
  });
});
