/**
 * One terminal stream (a shell or an exec) as `terminal` session events — the material the api
 * turns into asciicast v2. Output is what the client saw (after masking), coalesced into events of
 * at most MAX_CHUNK characters or FLUSH_MS of output, so a busy terminal costs a few events a second.
 */

const MAX_CHUNK = 16 * 1024;
const FLUSH_MS = 50;

export type TerminalEmit = (data: Record<string, unknown>) => void;

export class TerminalRecorder {
  private readonly t0 = process.hrtime.bigint();
  private pending = '';
  private pendingAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private ended = false;

  constructor(
    readonly stream: string,
    private readonly emit: TerminalEmit,
    start: { width?: number; height?: number; command?: string },
  ) {
    this.emit({ stream, event: 'start', t: 0, ...start });
  }

  private now(): number {
    return Number(process.hrtime.bigint() - this.t0) / 1e9;
  }

  output(text: string): void {
    if (this.ended || !text) return;
    if (!this.pending) this.pendingAt = this.now();
    this.pending += text;
    if (this.pending.length >= MAX_CHUNK) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  input(text: string): void {
    if (this.ended || !text) return;
    this.flush();
    this.emit({ stream: this.stream, event: 'i', t: this.now(), data: text });
  }

  resize(cols: number, rows: number): void {
    if (this.ended) return;
    this.flush();
    this.emit({ stream: this.stream, event: 'r', t: this.now(), data: `${cols}x${rows}` });
  }

  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.pending) {
      const part = this.pending.slice(0, MAX_CHUNK);
      this.pending = this.pending.slice(part.length);
      this.emit({ stream: this.stream, event: 'o', t: Math.round(this.pendingAt * 1e6) / 1e6, data: part });
    }
  }

  end(): void {
    if (this.ended) return;
    this.flush();
    this.ended = true;
    this.emit({ stream: this.stream, event: 'end', t: Math.round(this.now() * 1e6) / 1e6 });
  }
}
