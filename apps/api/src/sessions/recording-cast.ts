import { terminalEventDataSchema, type RecordedEvent, type TerminalEventData } from '@portcullis/protocol';

/**
 * asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/) from a session's `terminal` events:
 * a header line `{version: 2, width, height, timestamp, command?}`, then one `[t, code, data]` line
 * per output (`o`), input (`i`) or resize (`r`, "COLSxROWS"). `t` is seconds since the stream's start.
 */
export interface TerminalStreamInfo {
  stream: string;
  /** seq of its first event */
  firstSeq: number;
  command?: string;
  events: number;
}

export class TerminalStreams {
  private readonly byStream = new Map<string, { firstSeq: number; firstTime: string; items: { seq: number; data: TerminalEventData }[] }>();

  /** Takes events in seq order; events that are not `terminal`, or whose data is malformed, are skipped. */
  add(e: RecordedEvent): void {
    if (e.type !== 'terminal') return;
    const r = terminalEventDataSchema.safeParse(e.data);
    if (!r.success) return;
    let s = this.byStream.get(r.data.stream);
    if (!s) {
      s = { firstSeq: e.seq, firstTime: e.time, items: [] };
      this.byStream.set(r.data.stream, s);
    }
    s.items.push({ seq: e.seq, data: r.data });
  }

  list(): TerminalStreamInfo[] {
    return [...this.byStream.entries()]
      .map(([stream, s]) => ({ stream, firstSeq: s.firstSeq, events: s.items.length, ...(commandOf(s.items) ? { command: commandOf(s.items) } : {}) }))
      .sort((a, b) => a.firstSeq - b.firstSeq);
  }

  has(stream: string): boolean {
    return this.byStream.has(stream);
  }

  /** The asciicast v2 text of one stream. */
  cast(stream: string): string {
    const s = this.byStream.get(stream);
    if (!s) throw new Error(`no terminal stream ${stream}`);
    const start = s.items.find((i) => i.data.event === 'start')?.data;
    const firstResize = s.items.find((i) => i.data.event === 'r')?.data.data;
    const [rw, rh] = firstResize ? firstResize.split('x').map(Number) : [];
    const header: Record<string, unknown> = {
      version: 2,
      width: start?.width ?? rw ?? 80,
      height: start?.height ?? rh ?? 24,
      timestamp: Math.floor(Date.parse(s.firstTime) / 1000),
    };
    const command = commandOf(s.items);
    if (command) header.command = command;
    const lines = [JSON.stringify(header)];
    let last = 0;
    for (const { data } of s.items) {
      if (data.event !== 'o' && data.event !== 'i' && data.event !== 'r') continue;
      // players need non-decreasing times; a stream's events are in seq order, so clamp rather than sort
      last = Math.max(last, data.t);
      lines.push(JSON.stringify([Math.round(last * 1e6) / 1e6, data.event, data.data ?? '']));
    }
    return `${lines.join('\n')}\n`;
  }
}

function commandOf(items: { data: TerminalEventData }[]): string | undefined {
  return items.find((i) => i.data.command !== undefined)?.data.command;
}
