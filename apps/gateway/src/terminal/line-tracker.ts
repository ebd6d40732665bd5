import type { LineEditorModel } from '@portcullis/policy';

/**
 * What an interactive shell's Enter would run: the keystrokes go through the policy library's line
 * editor model (readline/zle editing; what it does not follow makes the line unreliable), plus what
 * only the gateway sees — a full-screen program in the output (its Enters are no shell lines the
 * model can follow: unreliable) and continuation lines (a line the policy's parse finds incomplete —
 * `r\`, an open quote, a here-doc — runs nothing; it is carried and decided whole with the next).
 */

export interface TrackedLine {
  /** the text the shell will run, continuation lines joined with newlines */
  text: string;
  reliable: boolean;
  reasons: string[];
}

export class LineTracker {
  private carried = '';
  private fullscreen = false;

  constructor(private readonly model: LineEditorModel) {}

  /** One input byte; true when it is a key that runs the line (hold it, take(), decide). */
  feed(byte: number): boolean {
    return this.model.feed(byte);
  }

  /** Output the client sees: a full-screen program switches the alternate screen on and off. */
  output(text: string): void {
    if (text.includes('\x1b[?1049h') || text.includes('\x1b[?47h') || text.includes('\x1b[?1047h')) this.fullscreen = true;
    if (text.includes('\x1b[?1049l') || text.includes('\x1b[?47l') || text.includes('\x1b[?1047l')) this.fullscreen = false;
  }

  /** The line the Enter runs (with the lines it continues); the model starts a new one. */
  take(): TrackedLine {
    const line = this.model.take();
    const text = this.carried ? `${this.carried}\n${line.text}` : line.text;
    this.carried = '';
    const reasons = [...line.reasons, ...(this.fullscreen ? ['a full-screen program is running'] : [])];
    return { text, reliable: reasons.length === 0, reasons };
  }

  /** The shell waits for more of this text: the next line continues it. */
  carry(text: string): void {
    this.carried = text;
  }

  /** The gateway cleared the line on the host (Ctrl-U): nothing is carried. */
  clear(): void {
    this.model.reset();
    this.carried = '';
  }
}
