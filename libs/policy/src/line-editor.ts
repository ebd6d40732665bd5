/**
 * A model of the shell's line editor (GNU readline in emacs mode, as bash, and zsh's zle, behave
 * by default), fed with the keystrokes the client sends, so the gateway knows the line an Enter
 * would run before that Enter reaches the host. Pure: bytes in, a line out.
 *
 * Modelled exactly: printable text (UTF-8, any split), Backspace/DEL/Ctrl-H, Delete (`ESC[3~`),
 * Ctrl-D on a non-empty line, Ctrl-U, Ctrl-K, Ctrl-W, Ctrl-C (the line is dropped), left/right
 * arrows and Ctrl-B/Ctrl-F, Home/End and Ctrl-A/Ctrl-E, Ctrl-L, Ctrl-V (the next key literally),
 * bracketed paste (`ESC[200~ … ESC[201~`: the pasted text, newlines included, goes into the line;
 * nothing runs before the Enter after it).
 *
 * Not modelled, so the line becomes *unreliable* (the policy's `interactive.unreliableLine`
 * decides it): history recall (up/down, Ctrl-P/N, Ctrl-R/S, `ESC .`), Tab completion, the kill
 * ring (Ctrl-Y), undo, transpose, word motions and kills with Alt, Ctrl-X sequences, any other
 * control key or escape sequence. Ctrl-O (run the line and fetch the next from history) runs the
 * line like Enter, and makes the next one unreliable.
 */

export interface EditedLine {
  /** the line as the shell will run it */
  text: string;
  /** false: a key the model does not follow changed the line; `reasons` say which */
  reliable: boolean;
  reasons: string[];
}

const MAX_LINE = 64 * 1024;
const MAX_ESCAPE = 64;

export class LineEditorModel {
  private chars: string[] = [];
  private cursor = 0;
  private reasons: string[] = [];
  private esc: string | null = null;
  private pasting = false;
  private literal = false;
  private utf8: number[] = [];
  private utf8Need = 0;
  private nextUnreliable: string | null = null;

  /**
   * Feeds one byte of client input. Returns true when it is a key that runs the line (Enter: CR
   * or LF outside a paste, or Ctrl-O): hold it, `take()` the line, decide.
   */
  feed(byte: number): boolean {
    if (this.esc !== null) return this.escapeByte(byte);
    // UTF-8: collect the bytes of one character
    if (this.utf8Need > 0) {
      if ((byte & 0xc0) === 0x80) {
        this.utf8.push(byte);
        if (--this.utf8Need === 0) this.insert(Buffer.from(this.utf8).toString('utf8'));
        return false;
      }
      this.utf8Need = 0;
      this.insert('\ufffd');
    }
    if (byte >= 0x80) {
      const need = byte >= 0xf0 && byte < 0xf8 ? 3 : byte >= 0xe0 ? 2 : byte >= 0xc0 ? 1 : 0;
      if (need === 0) { this.insert('\ufffd'); return false; }
      this.utf8 = [byte];
      this.utf8Need = need;
      return false;
    }
    if (this.literal) {
      this.literal = false;
      this.insert(String.fromCharCode(byte));
      return false;
    }
    if (this.pasting) {
      if (byte === 0x1b) { this.esc = ''; return false; }
      // a paste is text: its line ends go into the line (CR as the newline it stands for)
      this.insert(byte === 0x0d ? '\n' : String.fromCharCode(byte));
      return false;
    }
    if (byte >= 0x20 && byte < 0x7f) { this.insert(String.fromCharCode(byte)); return false; }
    switch (byte) {
      case 0x0d: case 0x0a: return true; // Enter
      case 0x0f: // Ctrl-O: operate-and-get-next runs this line, then recalls the next from history
        this.nextUnreliable = 'Ctrl-O recalls a line from history';
        return true;
      case 0x7f: case 0x08: // Backspace / Ctrl-H
        if (this.cursor > 0) { this.chars.splice(this.cursor - 1, 1); this.cursor--; }
        return false;
      case 0x04: // Ctrl-D: delete the character under the cursor (on an empty line: end of input)
        if (this.cursor < this.chars.length) this.chars.splice(this.cursor, 1);
        return false;
      case 0x15: this.chars.splice(0, this.cursor); this.cursor = 0; return false; // Ctrl-U
      case 0x0b: this.chars.length = this.cursor; return false; // Ctrl-K
      case 0x17: this.killWord(); return false; // Ctrl-W
      case 0x03: this.reset(); return false; // Ctrl-C: the line is abandoned
      case 0x01: this.cursor = 0; return false; // Ctrl-A
      case 0x05: this.cursor = this.chars.length; return false; // Ctrl-E
      case 0x02: if (this.cursor > 0) this.cursor--; return false; // Ctrl-B
      case 0x06: if (this.cursor < this.chars.length) this.cursor++; return false; // Ctrl-F
      case 0x0c: return false; // Ctrl-L: clears the screen, not the line
      case 0x16: this.literal = true; return false; // Ctrl-V
      case 0x1b: this.esc = ''; return false;
      case 0x09: this.unreliable('Tab completion'); return false;
      case 0x10: case 0x0e: this.unreliable('history recall (Ctrl-P/Ctrl-N)'); return false;
      case 0x12: case 0x13: this.unreliable('history search (Ctrl-R/Ctrl-S)'); return false;
      case 0x19: this.unreliable('yank (Ctrl-Y)'); return false;
      case 0x14: this.unreliable('transpose (Ctrl-T)'); return false;
      case 0x1f: this.unreliable('undo'); return false;
      case 0x18: this.unreliable('a Ctrl-X command'); return false;
      default: this.unreliable(`control key 0x${byte.toString(16).padStart(2, '0')}`); return false;
    }
  }

  /**
   * Feeds bytes until a key that runs the line. Returns its index in `data` (hold that byte; the
   * bytes before it may go upstream) or -1 when none came (all of `data` may go upstream).
   */
  feedUntilEnter(data: Uint8Array, from = 0): number {
    for (let i = from; i < data.length; i++) if (this.feed(data[i]!)) return i;
    return -1;
  }

  /** The line an Enter runs; the model starts a new, empty line. */
  take(): EditedLine {
    if (this.utf8Need > 0) { this.utf8Need = 0; this.insert('\ufffd'); }
    const line: EditedLine = { text: this.chars.join(''), reliable: this.reasons.length === 0, reasons: [...this.reasons] };
    this.reset();
    if (this.nextUnreliable) { this.reasons.push(this.nextUnreliable); this.nextUnreliable = null; }
    return line;
  }

  /** The line so far, without taking it. */
  peek(): EditedLine {
    return { text: this.chars.join(''), reliable: this.reasons.length === 0, reasons: [...this.reasons] };
  }

  /** Starts over with an empty line (after Ctrl-C, or when the gateway cleared the line on the host). */
  reset(): void {
    this.chars = [];
    this.cursor = 0;
    this.reasons = [];
    this.literal = false;
  }

  private unreliable(why: string): void {
    if (!this.reasons.includes(why) && this.reasons.length < 16) this.reasons.push(why);
  }

  private insert(s: string): void {
    if (this.chars.length >= MAX_LINE) { this.unreliable('the line is longer than the model keeps'); return; }
    this.chars.splice(this.cursor, 0, s);
    this.cursor++;
  }

  /** readline's unix-word-rubout: whitespace before the cursor, then the word before it. */
  private killWord(): void {
    let i = this.cursor;
    while (i > 0 && /\s/.test(this.chars[i - 1]!)) i--;
    while (i > 0 && !/\s/.test(this.chars[i - 1]!)) i--;
    this.chars.splice(i, this.cursor - i);
    this.cursor = i;
  }

  private escapeByte(byte: number): boolean {
    const seq = (this.esc += String.fromCharCode(byte));
    if (seq.length > MAX_ESCAPE) { this.esc = null; this.unreliable('an escape sequence too long to follow'); return false; }
    const csi = seq.startsWith('[');
    const ss3 = seq.startsWith('O');
    if (seq === '[' || seq === 'O') return false;
    if (csi && !(byte >= 0x40 && byte <= 0x7e)) return false; // CSI parameters go on
    this.esc = null;
    if (this.pasting) {
      if (seq === '[201~') this.pasting = false;
      else this.insertText(`\x1b${seq}`);
      return false;
    }
    if (csi || ss3) {
      const key = seq.slice(1);
      switch (key) {
        case 'C': if (this.cursor < this.chars.length) this.cursor++; return false;
        case 'D': if (this.cursor > 0) this.cursor--; return false;
        case 'H': case '1~': case '7~': this.cursor = 0; return false;
        case 'F': case '4~': case '8~': this.cursor = this.chars.length; return false;
        case '3~': if (this.cursor < this.chars.length) this.chars.splice(this.cursor, 1); return false;
        case '200~': if (csi) { this.pasting = true; return false; } break;
        case 'A': case 'B': this.unreliable('history recall (up/down)'); return false;
        case 'I': case 'O': return false; // focus in/out reports
        default: break;
      }
      this.unreliable(`key ESC ${seq}`);
      return false;
    }
    if (byte === 0x0d) { this.unreliable('Alt-Enter'); return false; }
    this.unreliable(`key Alt-${seq === '\x7f' ? 'Backspace' : seq}`);
    return false;
  }

  private insertText(s: string): void {
    for (const c of s) this.insert(c);
  }
}
