import { StringDecoder } from 'node:string_decoder';
import { findAll } from './detectors.js';
import { detectorTextMasker } from './masking/values.js';
import type { MaskingOptions } from './masking/masking.types.js';
import type { PolicyDocument } from './policy-document.js';

/**
 * Masks a terminal's output (SSH exec/shell, kubectl exec/attach, pod logs) as a stream with the
 * policy's detector rules — the same detectors as result masking — so a value split across two
 * chunks is still masked:
 *
 * - Hold-back is bounded: what may still grow into a value is kept, the rest goes out at once. No
 *   detector spans a line break, so everything up to the last `\n`/`\r` is final; of an unfinished
 *   line at most `maxHoldBack` characters are kept (a value straddling that forced cut is held
 *   whole). `flush()` (on idle and at the end) sends the rest.
 * - UTF-8 safe: bytes are decoded with a streaming decoder, so a character split across chunks is
 *   joined, never turned into U+FFFD.
 * - Terminal safe: an escape sequence (CSI, OSC, DCS, two-byte ESC) is never split and never masked;
 *   detectors read the text as shown, without them, so a value with colour codes inside is still
 *   found, and keeps its codes. Replacements hold no control characters, so masking never changes
 *   the line structure.
 * - Private keys: the body lines of a `-----BEGIN … PRIVATE KEY-----` block are replaced line by
 *   line (BEGIN and END lines stay), also when the block comes one line per chunk.
 */

export interface StreamMaskerOptions extends MaskingOptions {
  /** characters of an unfinished line kept to join with the next chunk (default 4096) */
  maxHoldBack?: number;
}

export interface StreamMaskFinding {
  detector: string;
  rule: string;
}

const DEFAULT_HOLD_BACK = 4096;
const ESC = 0x1b;
const PRIVATE_KEY = 'PRIVATE_KEY';
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/g;
const KEY_BEGIN = /-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----/;
const KEY_END = /-----END ([A-Z0-9]+ )*PRIVATE KEY-----/;
const KEY_INLINE = /(-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----)(.*?)(-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)/g;
/** a body line of a PEM block: base64, or an RFC 1421 header (Proc-Type: …, DEK-Info: …), or blank */
const KEY_BODY = /^\s*([A-Za-z0-9+/=]+|[A-Za-z-]+: .*|)\s*$/;

/**
 * End of the escape sequence starting at `i` (text[i] is ESC), or -1 when it is not complete yet.
 * CSI: ESC [ params final(0x40–0x7e); OSC/DCS/APC/PM/SOS: ESC ]|P|_|^|X … BEL or ESC \; else ESC + one byte.
 */
export function escapeEnd(text: string, i: number): number {
  const n = text.charCodeAt(i + 1);
  if (Number.isNaN(n)) return -1;
  if (n === 0x5b) { // [
    for (let j = i + 2; j < text.length; j++) {
      const c = text.charCodeAt(j);
      if (c >= 0x40 && c <= 0x7e) return j + 1;
      if (c < 0x20 || c > 0x3f) return j; // not a CSI byte: the sequence ends before it (malformed)
    }
    return -1;
  }
  if (n === 0x5d || n === 0x50 || n === 0x5f || n === 0x5e || n === 0x58) { // ] P _ ^ X
    for (let j = i + 2; j < text.length; j++) {
      const c = text.charCodeAt(j);
      if (c === 0x07) return j + 1;
      if (c === ESC && text.charCodeAt(j + 1) === 0x5c) return j + 2;
      if (c === ESC && j + 1 < text.length) return j; // a new sequence: this one was cut short
    }
    return -1;
  }
  return i + 2;
}

export class TerminalStreamMasker {
  /** values masked so far */
  masked = 0;
  /** what was masked, by detector (for the session record) */
  readonly findings = new Map<string, StreamMaskFinding & { count: number }>();
  private buf = '';
  private readonly decoder = new StringDecoder('utf8');
  private inKey = false;
  /** the last character sent was not a line end (a forced cut) */
  private midLine = false;
  /** inside a key block, the line cut by a forced cut is a body line being masked */
  private maskingLine = false;

  constructor(
    private readonly m: NonNullable<ReturnType<typeof detectorTextMasker>>,
    private readonly maxHoldBack: number,
  ) {}

  /** Masked text that is safe to send now; some input may be held back for the next chunk. */
  push(chunk: string | Uint8Array): string {
    this.buf += typeof chunk === 'string' ? chunk : this.decoder.write(chunk as Buffer);
    return this.drain(false);
  }

  /** The rest, at the end of the stream or when it has been idle. */
  flush(): string {
    this.buf += this.decoder.end();
    return this.drain(true);
  }

  /** Characters held back now (the caller flushes them when the stream goes idle). */
  get pending(): number {
    return this.buf.length;
  }

  private drain(final: boolean): string {
    const text = this.buf;
    if (text.length === 0) return '';
    const cut = final ? text.length : this.cutPoint(text);
    if (cut === 0) return '';
    const { out, consumed } = this.maskUpTo(text, cut, final);
    this.buf = text.slice(consumed);
    return out;
  }

  private cutPoint(text: string): number {
    let boundary = 0;
    for (let i = text.length - 1; i >= 0; i--) {
      const c = text.charCodeAt(i);
      if (c === 10 || c === 13) { boundary = i + 1; break; }
    }
    let cut = text.length - boundary <= this.maxHoldBack ? boundary : text.length - this.maxHoldBack;
    // never split an escape sequence (complete ones included) or a surrogate pair
    const from = Math.max(0, cut - 64);
    for (let i = text.indexOf('\x1b', from); i >= 0 && i < cut; i = text.indexOf('\x1b', i + 1)) {
      const end = escapeEnd(text, i);
      if (end < 0 || end > cut) { cut = i; break; }
    }
    if (cut > 0 && cut < text.length) {
      const c = text.charCodeAt(cut - 1);
      if (c >= 0xd800 && c <= 0xdbff) cut--;
    }
    return cut;
  }

  /** Masks text[0, cut) (more when a value straddles the cut and the stream ends); returns what was consumed. */
  private maskUpTo(text: string, cut: number, final: boolean): { out: string; consumed: number } {
    // escape sequences → NUL of the same length: a separator to every detector, and their places known
    let neutral = '';
    const escapes: [number, number][] = [];
    let last = 0;
    for (let i = text.indexOf('\x1b'); i >= 0; i = text.indexOf('\x1b', i + 1)) {
      let end = escapeEnd(text, i);
      if (end < 0) end = text.length;
      escapes.push([i, end]);
      neutral += text.slice(last, i) + '\0'.repeat(end - i);
      last = end;
      i = end - 1;
    }
    neutral += text.slice(last);

    // private key blocks, line by line, over what is sent now
    const keyMask = this.keyLines(neutral, cut, final);

    // detectors read the text as the screen shows it: escape sequences take no room, so a value with
    // colour codes inside (`alice@\x1b[1mexample.com`) is one value; findings map back to the bytes
    let visible = '';
    const at: number[] = [];
    for (let i = 0; i < neutral.length; i++) {
      if (neutral.charCodeAt(i) === 0 && text.charCodeAt(i) !== 0) continue;
      visible += neutral[i];
      at.push(i);
    }
    let findings = findAll(visible, this.m.detectors)
      .map((f) => ({ start: at[f.start]!, end: at[f.end - 1]! + 1, detector: f.detector }))
      .filter((f) => !overlaps(keyMask, f.start, f.end));
    let consumed = cut;
    for (const f of findings) {
      if (f.start < consumed && f.end > consumed && !final) {
        // a value across the cut waits whole (unless it started at the very beginning: then it goes)
        consumed = f.start > 0 ? f.start : Math.max(consumed, f.end);
      }
    }
    findings = findings.filter((f) => f.end <= consumed);
    if (consumed < cut) this.unwindKeyState(keyMask, consumed);

    let out = '';
    let pos = 0;
    const ranges = [
      ...findings.map((f) => ({ start: f.start, end: f.end, detector: f.detector })),
      ...keyMask.filter((k) => k.start < consumed).map((k) => ({ start: k.start, end: Math.min(k.end, consumed), detector: PRIVATE_KEY })),
    ].sort((a, b) => a.start - b.start);
    for (const r of ranges) {
      if (r.start < pos) continue;
      out += text.slice(pos, r.start);
      const inner = escapes.filter(([s, e]) => s < r.end && e > r.start);
      const visible = neutral.slice(r.start, r.end).replace(/\0/g, '');
      const replacement = r.detector === PRIVATE_KEY ? this.m.token : this.m.mask(r.detector, visible);
      out += replacement.replace(CONTROL, '');
      for (const [s, e] of inner) out += text.slice(Math.max(s, r.start), Math.min(e, r.end));
      pos = r.end;
      this.count(r.detector);
    }
    out += text.slice(pos, consumed);
    if (consumed > 0) {
      const c = text.charCodeAt(consumed - 1);
      this.midLine = !(c === 10 || c === 13);
    }
    return { out, consumed };
  }

  private count(detector: string): void {
    this.masked++;
    const rule = detector === PRIVATE_KEY ? this.m.rule : this.m.ruleOf(detector);
    const f = this.findings.get(detector);
    if (f) f.count++;
    else this.findings.set(detector, { detector, rule, count: 1 });
  }

  // private key state at the start of this segment, to rewind if less than planned is sent
  private keyStateBefore = { inKey: false, midLine: false, maskingLine: false };
  private keyStateAt = new Map<number, { inKey: boolean; maskingLine: boolean }>();

  /** Ranges of private key material in neutral[0, cut), line by line, updating the block state. */
  private keyLines(neutral: string, cut: number, final: boolean): { start: number; end: number }[] {
    this.keyStateBefore = { inKey: this.inKey, midLine: this.midLine, maskingLine: this.maskingLine };
    this.keyStateAt.clear();
    const ranges: { start: number; end: number }[] = [];
    let start = 0;
    let continuation = this.midLine;
    while (start < cut) {
      this.keyStateAt.set(start, { inKey: this.inKey, maskingLine: this.maskingLine });
      let end = start;
      while (end < cut && neutral.charCodeAt(end) !== 10 && neutral.charCodeAt(end) !== 13) end++;
      const line = neutral.slice(start, end);
      const complete = end < cut || final;
      if (continuation && this.maskingLine) {
        ranges.push({ start, end });
      } else if (this.inKey && !continuation) {
        if (KEY_END.test(line)) this.inKey = false;
        else if (KEY_BODY.test(line.replace(/\0/g, ''))) {
          if (line.length) ranges.push({ start, end });
          this.maskingLine = !complete;
        } else this.inKey = false;
      } else {
        KEY_INLINE.lastIndex = 0;
        let m: RegExpExecArray | null;
        while ((m = KEY_INLINE.exec(line)) !== null) {
          const s = start + m.index + m[1]!.length;
          if (m[2]!.length) ranges.push({ start: s, end: s + m[2]!.length });
        }
        const b = line.search(KEY_BEGIN);
        if (b >= 0 && !KEY_END.test(line.slice(b))) this.inKey = true;
      }
      if (end < cut) {
        if (complete) this.maskingLine = false;
        // \r\n is one line end
        end += neutral.charCodeAt(end) === 13 && neutral.charCodeAt(end + 1) === 10 && end + 1 < cut ? 2 : 1;
        continuation = false;
      }
      start = end;
    }
    return ranges;
  }

  /** Less than planned was sent: the key state goes back to where the held text starts. */
  private unwindKeyState(_ranges: { start: number; end: number }[], consumed: number): void {
    let best = -1;
    for (const k of this.keyStateAt.keys()) if (k <= consumed && k > best) best = k;
    const s = best >= 0 ? this.keyStateAt.get(best)! : this.keyStateBefore;
    this.inKey = s.inKey;
    this.maskingLine = s.maskingLine;
  }
}

function overlaps(ranges: { start: number; end: number }[], start: number, end: number): boolean {
  return ranges.some((r) => r.start < end && r.end > start);
}

/**
 * A stream masker for one output stream, or null when the policy masks nothing with detectors.
 * One per stream: it holds state (held text, a private key block in progress).
 */
export function createStreamMasker(doc: PolicyDocument, opts: StreamMaskerOptions): TerminalStreamMasker | null {
  const m = detectorTextMasker(doc, opts);
  if (!m) return null;
  return new TerminalStreamMasker(m, Math.max(64, opts.maxHoldBack ?? DEFAULT_HOLD_BACK));
}
