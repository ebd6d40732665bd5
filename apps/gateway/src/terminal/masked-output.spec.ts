import { createStreamMasker } from '@portcullis/policy';
import { describe, expect, it } from 'vitest';
import { MaskedOutput } from './masked-output.js';

const doc = (token?: string) => ({ name: 'p', guardrails: [], masking: [{ name: 'cards', detectors: ['CREDIT_CARD'], strategy: 'redact', ...(token ? { token } : {}) }] }) as unknown as Parameters<typeof createStreamMasker>[0];
const masker = (token?: string) => createStreamMasker(doc(token), { hmacKey: Buffer.alloc(32, 1) });

/** everything out of `o` for `input` cut at `cuts` */
function run(o: MaskedOutput, input: Buffer, cuts: number[]): { wire: Buffer; shown: string } {
  const wire: Buffer[] = [];
  let shown = '';
  let from = 0;
  for (const at of [...cuts, input.length]) {
    const c = o.push(input.subarray(from, at));
    wire.push(c.wire);
    shown += c.shown;
    from = at;
  }
  const end = o.flush();
  return { wire: Buffer.concat([...wire, end.wire]), shown: shown + end.shown };
}

// invalid UTF-8 (a lone continuation byte, a truncated 3-byte sequence, 0xff), NUL, ESC, CR, a valid é, and a card number
const BINARY = Buffer.concat([Buffer.from([0x80, 0xe2, 0x82, 0xff, 0x00, 0x1b, 0x0d]), Buffer.from('é card 4111 1111 1111 1111 end'), Buffer.from([0xc3, 0x28, 0xfe])]);
const MASKED = Buffer.concat([Buffer.from([0x80, 0xe2, 0x82, 0xff, 0x00, 0x1b, 0x0d]), Buffer.from('é card [REDACTED] end'), Buffer.from([0xc3, 0x28, 0xfe])]);

describe('MaskedOutput', () => {
  it('without a tty: every byte no detector matched leaves as it came, however the stream is cut', () => {
    for (let cut = 0; cut <= BINARY.length; cut++) {
      expect(run(new MaskedOutput(masker(), { tty: false }), BINARY, [cut]).wire.equals(MASKED)).toBe(true);
    }
    expect(run(new MaskedOutput(masker(), { tty: false }), BINARY, Array.from({ length: BINARY.length }, (_, i) => i)).wire.equals(MASKED)).toBe(true);
  });

  it('a replacement beyond latin1 goes out as UTF-8; the record is the sent bytes as UTF-8', () => {
    const r = run(new MaskedOutput(masker('█'), { tty: false }), Buffer.from('a 4111 1111 1111 1111 b\n'), [5]);
    expect(r.wire.toString('utf8')).toBe('a █ b\n');
    expect(r.shown).toBe('a █ b\n');
  });

  it('with a tty: text, a character split across chunks joined', () => {
    const input = Buffer.from('é 4111 1111 1111 1111 ü\n');
    const r = run(new MaskedOutput(masker(), { tty: true }), input, [1, 9]);
    expect(r.wire.toString('utf8')).toBe('é [REDACTED] ü\n');
  });

  it('without a masker: the input itself', () => {
    const o = new MaskedOutput(null, { tty: false });
    const c = o.push(BINARY);
    expect(c.wire).toBe(BINARY);
    expect(o.flush().wire.length).toBe(0);
  });
});
