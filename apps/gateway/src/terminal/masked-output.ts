import { StringDecoder } from 'node:string_decoder';
import type { StreamMasker } from './command-policy.types.js';

/** A chunk of output as it leaves: the bytes the client is sent, and the text the recording shows. */
export interface OutputChunk {
  wire: Buffer;
  shown: string;
}

const EMPTY = Buffer.alloc(0);
// eslint-disable-next-line no-control-regex
const BEYOND_LATIN1 = /[^\x00-\xff]+/g;

/**
 * One output stream of a terminal (an SSH exec or shell, a kubectl exec or attach) through the
 * policy's stream masker, for SSH and Kubernetes alike.
 *
 * A tty is a terminal: its output is UTF-8 text, masked as text. Without a tty the output may be any
 * bytes (`ssh host cat /bin/ls`, `tar c`, kubectl cp's tar): the masker reads it byte for byte —
 * latin1 maps each byte to one character and back — so every byte no detector matched leaves
 * exactly as it came, invalid UTF-8 included; only a matched value is replaced. A replacement with
 * characters beyond latin1 (an admin's token) has those characters sent as UTF-8. The recording
 * decodes what was sent as UTF-8, as a terminal would show it.
 *
 * Without a masker, `wire` is the input itself (nothing rewritten) and only `shown` is computed.
 */
export class MaskedOutput {
  private readonly input: StringDecoder;
  private readonly shownDecoder = new StringDecoder('utf8');
  private readonly bytewise: boolean;

  constructor(
    private readonly masker: StreamMasker | null,
    opts: { tty: boolean },
  ) {
    this.bytewise = !opts.tty;
    this.input = new StringDecoder(this.bytewise ? 'latin1' : 'utf8');
  }

  /** values masked so far */
  get masked(): number {
    return this.masker?.masked ?? 0;
  }

  push(b: Buffer): OutputChunk {
    if (!this.masker) return { wire: b, shown: this.shownDecoder.write(b) };
    return this.out(this.masker.push(this.input.write(b)));
  }

  /** What the masker still holds (at the end of the stream, or when it goes idle). */
  flush(): OutputChunk {
    if (!this.masker) return { wire: EMPTY, shown: '' };
    return this.out(this.masker.flush());
  }

  private out(text: string): OutputChunk {
    if (!text) return { wire: EMPTY, shown: '' };
    if (!this.bytewise) return { wire: Buffer.from(text, 'utf8'), shown: text };
    const wire = latin1Wire(text);
    return { wire, shown: this.shownDecoder.write(wire) };
  }
}

/** Each character ≤ U+00FF as its byte (the input's bytes, as they came); runs beyond latin1 (only from a replacement) as UTF-8. */
function latin1Wire(text: string): Buffer {
  BEYOND_LATIN1.lastIndex = 0;
  if (!BEYOND_LATIN1.test(text)) return Buffer.from(text, 'latin1');
  const parts: Buffer[] = [];
  let from = 0;
  BEYOND_LATIN1.lastIndex = 0;
  for (let m = BEYOND_LATIN1.exec(text); m; m = BEYOND_LATIN1.exec(text)) {
    parts.push(Buffer.from(text.slice(from, m.index), 'latin1'), Buffer.from(m[0], 'utf8'));
    from = m.index + m[0].length;
  }
  parts.push(Buffer.from(text.slice(from), 'latin1'));
  return Buffer.concat(parts);
}
