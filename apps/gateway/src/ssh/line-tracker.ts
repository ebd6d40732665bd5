/**
 * Follows what the user types at an interactive shell so the gateway can decide the line when its
 * Enter is pressed. It models what readline does with plain typing: printable characters append,
 * Backspace/DEL and Ctrl-W delete, Ctrl-U and Ctrl-C clear. Anything it does not model (cursor keys,
 * history recall, Tab completion, Ctrl-R, other control keys) makes the line *unreliable*: what the
 * shell will run may differ from what the gateway reconstructed, and the policy's setting for such
 * lines decides. A full-screen program (alternate screen in the output) makes every line unreliable
 * too. A line that is not complete (a trailing backslash, an open quote) is not run by the shell: it
 * is carried into the next line, so `r\` + `m -rf /` is decided as the whole command.
 */

export interface TrackedLine {
  /** the text the shell will run, continuation lines joined with newlines */
  text: string;
  reliable: boolean;
  /** false: the shell waits for more (continuation); nothing runs on this Enter */
  complete: boolean;
}

const ESC = 0x1b;

export class LineTracker {
  private line = '';
  private carried = '';
  private unreliable = false;
  private fullscreen = false;
  /** inside an escape sequence the client sent: [state, collected] */
  private esc: string | null = null;
  private pasting = false;

  /**
   * Feeds one input byte; returns true when it is an Enter that would run a line (the caller then
   * asks `take()` and decides).
   */
  feed(byte: number): boolean {
    if (this.esc !== null) {
      this.esc += String.fromCharCode(byte);
      if (this.esc === '[' || this.esc === 'O' || (this.esc.startsWith('[') && !/[@-~]$/.test(this.esc.slice(1)))) {
        if (this.esc.length > 32) {
          this.esc = null;
          this.unreliable = true;
        }
        return false;
      }
      const seq = this.esc;
      this.esc = null;
      if (seq === '[200~') this.pasting = true;
      else if (seq === '[201~') this.pasting = false;
      else this.unreliable = true; // cursor keys, history, Alt-…: not modelled
      return false;
    }
    if (byte === 0x0d || byte === 0x0a) {
      // a newline inside a paste runs the line too: held like an Enter
      return true;
    }
    if (byte === ESC) {
      this.esc = '';
      return false;
    }
    if (byte === 0x7f || byte === 0x08) {
      // one character, not one byte (the line is kept as latin1 bytes): continuation bytes go with it
      let i = this.line.length - 1;
      while (i > 0 && (this.line.charCodeAt(i) & 0xc0) === 0x80) i--;
      this.line = this.line.slice(0, Math.max(0, i));
      return false;
    }
    if (byte === 0x15 || byte === 0x03) {
      this.line = '';
      this.carried = byte === 0x03 ? '' : this.carried;
      if (byte === 0x03) this.unreliable = false;
      return false;
    }
    if (byte === 0x17) {
      this.line = this.line.replace(/\S+\s*$/, '');
      return false;
    }
    if (byte < 0x20) {
      this.unreliable = true; // Tab, Ctrl-R, Ctrl-A, …
      return false;
    }
    this.line += String.fromCharCode(byte);
    return false;
  }

  /** Output the client sees: a full-screen program switches the alternate screen on. */
  output(text: string): void {
    if (text.includes('\x1b[?1049h') || text.includes('\x1b[?47h') || text.includes('\x1b[?1047h')) this.fullscreen = true;
    if (text.includes('\x1b[?1049l') || text.includes('\x1b[?47l') || text.includes('\x1b[?1047l')) this.fullscreen = false;
  }

  /** The line the Enter runs, and resets for the next one. */
  take(): TrackedLine {
    const text = this.carried ? `${this.carried}\n${Buffer.from(this.line, 'latin1').toString('utf8')}` : Buffer.from(this.line, 'latin1').toString('utf8');
    const reliable = !this.unreliable && !this.fullscreen;
    const complete = isComplete(text);
    this.line = '';
    this.unreliable = false;
    this.carried = complete ? '' : text;
    return { text, reliable, complete: complete || !reliable };
  }

  /** The shell waits for more of this text (the policy's parse found it incomplete): the next line continues it. */
  carry(text: string): void {
    this.carried = text;
  }

  /** After a refused line the gateway cleared it (Ctrl-U): nothing is carried. */
  clear(): void {
    this.line = '';
    this.carried = '';
    this.unreliable = false;
  }
}

/** Whether a shell would run `text` now: no trailing line continuation, no open quote. */
export function isComplete(text: string): boolean {
  let single = false;
  let double = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (single) {
      if (c === "'") single = false;
      continue;
    }
    if (c === '\\') {
      if (i === text.length - 1) return false;
      i++;
      continue;
    }
    if (c === "'" && !double) single = true;
    else if (c === '"') double = !double;
  }
  return !single && !double;
}
