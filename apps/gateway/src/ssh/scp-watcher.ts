import { posix } from 'node:path';
import { normalise } from './sftp-proxy.js';
import type { FileOp, CommandVerdict } from '../terminal/command-policy.types.js';

/**
 * Legacy SCP (`scp -O`): the client runs `scp -t <target>` (upload) or `scp -f <source>…`
 * (download) on the host, and the sending side streams records — `C<mode> <size> <name>` then the
 * file's bytes, `D<mode> 0 <name>` to enter a directory, `E` to leave it, `T…` times. The watcher
 * reads the sender's stream and decides each file and directory by its full path before its record
 * passes; the caller ends the transfer on a refusal, and holds it while a record waits for approval.
 */

export interface ScpCommand {
  direction: 'upload' | 'download';
  /** target (upload) or sources (download), as given */
  paths: string[];
}

/** Characters the host's shell would interpret in an scp path: the path then is not what it says. */
const SHELL_SYNTAX = /[$`;&|<>(){}'"\\\n!#]/;
const GLOB = /[*?[\]]/;

/**
 * `scp [-v -r -p -d -q …] -t|-f [--] path…` → what it transfers; null: not an scp command; 'refused':
 * an scp command whose paths the host's shell would rewrite (or an upload of several targets).
 */
export function parseScpCommand(command: string): ScpCommand | 'refused' | null {
  const words = command.trim().split(/[ \t]+/);
  if (words[0] !== 'scp') return null;
  let direction: ScpCommand['direction'] | null = null;
  const paths: string[] = [];
  let flagsDone = false;
  for (const w of words.slice(1)) {
    if (!flagsDone && w === '--') {
      flagsDone = true;
      continue;
    }
    if (!flagsDone && w.startsWith('-')) {
      if (/^-[a-zA-Z]+$/.test(w)) {
        if (w.includes('t')) direction = 'upload';
        if (w.includes('f')) direction = direction ? null : 'download';
        continue;
      }
      return 'refused';
    }
    flagsDone = true;
    paths.push(w);
  }
  if (!direction) return null;
  if (!paths.length || paths.some((p) => SHELL_SYNTAX.test(p))) return 'refused';
  if (direction === 'upload' && (paths.length !== 1 || GLOB.test(paths[0]!))) return 'refused';
  if (direction === 'download') {
    // the records name files by their base name: their directory is the source's, unambiguous and literal
    const dirs = new Set(paths.map((p) => posix.dirname(p)));
    if (dirs.size !== 1 || GLOB.test([...dirs][0]!)) return 'refused';
  }
  return { direction, paths };
}

const MAX_RECORD = 4096;
const EMPTY = Buffer.alloc(0);

/** A file operation of a record, with its verdict. */
export interface ScpDecided {
  op: FileOp;
  verdict: CommandVerdict;
}

/** What the watcher lets through of the sender's bytes, and what stops it. */
export interface ScpStep {
  /** bytes that go on to the receiver now, in order */
  pass: Buffer;
  /**
   * a record that needs approval: it (and everything the sender sent after it) is kept until
   * `resolve()`. The sender waits for the receiver's one-byte answer to a record before it sends more,
   * so holding the record holds the transfer.
   */
  wait: { ops: ScpDecided[] } | null;
  /** the transfer is refused (the caller ends it) */
  refused: string | null;
}

/**
 * Reads the sender's side of a legacy scp stream and decides each `C` (file) and `D` (directory)
 * record by its full path before the record passes. A record is passed whole or not at all (its bytes
 * are kept until its newline), so a record waiting for approval never reaches the receiver in part;
 * file data passes as it comes. No I/O here: the caller relays `pass`, asks for approvals, answers the
 * sender.
 */
export class ScpWatcher {
  private line: number[] = [];
  /** bytes of file data (plus its trailing status byte) still to pass */
  private data = 0;
  /** the directories records are in: several candidates at the top of an upload (the target may be a directory or a new name) */
  private stack: string[][];
  /** at the top level of an upload: a record's path is the target itself or inside it */
  private top: boolean;
  private failed: string | null = null;
  /** the record waiting for its decision (with what passing it changes), and the input after it */
  private waiting: { record: Buffer; passed(): void } | null = null;
  private kept: Buffer[] = [];
  private keptLength = 0;

  constructor(
    private readonly cmd: ScpCommand,
    private readonly io: { decide(op: FileOp): CommandVerdict },
    home = '/',
  ) {
    const first = cmd.paths[0]!;
    if (cmd.direction === 'upload') {
      // `scp f host:T`: T/f when T is a directory, else T itself — both are decided
      this.stack = [[normalise(first, home)]];
      this.top = true;
    } else {
      this.stack = [[normalise(posix.dirname(first), home)]];
      this.top = false;
    }
  }

  /** bytes the sender sent after a record that waits (a well-behaved sender sends none) */
  get held(): number {
    return this.keptLength;
  }

  /** Feeds the sender's bytes. */
  push(chunk: Buffer): ScpStep {
    if (this.failed) return { pass: EMPTY, wait: null, refused: this.failed };
    if (this.waiting) {
      this.kept.push(chunk);
      this.keptLength += chunk.length;
      return { pass: EMPTY, wait: null, refused: null };
    }
    return this.run(chunk);
  }

  /** The waiting record's decision: approved, it passes; otherwise it is dropped (the caller tells both sides). Then the kept input goes on. */
  resolve(approved: boolean): ScpStep {
    const w = this.waiting;
    if (!w) return { pass: EMPTY, wait: null, refused: this.failed };
    this.waiting = null;
    if (approved) w.passed();
    const rest = Buffer.concat(this.kept);
    this.kept = [];
    this.keptLength = 0;
    const step = this.run(rest);
    return approved ? { ...step, pass: Buffer.concat([w.record, step.pass]) } : step;
  }

  private run(chunk: Buffer): ScpStep {
    const out: Buffer[] = [];
    for (let i = 0; i < chunk.length; i++) {
      if (this.data > 0) {
        const take = Math.min(this.data, chunk.length - i);
        out.push(chunk.subarray(i, i + take));
        this.data -= take;
        i += take - 1;
        continue;
      }
      const b = chunk[i]!;
      if (b !== 0x0a) {
        if (this.line.length >= MAX_RECORD) return this.refuse(out, 'scp record too long');
        this.line.push(b);
        continue;
      }
      const raw = Buffer.from([...this.line, 0x0a]);
      this.line = [];
      const d = this.record(raw.toString('utf8', 0, raw.length - 1));
      if (typeof d === 'string') return this.refuse(out, d);
      if (d.wait) {
        this.waiting = { record: raw, passed: d.passed };
        const rest = chunk.subarray(i + 1);
        this.kept = rest.length ? [rest] : [];
        this.keptLength = rest.length;
        return { pass: Buffer.concat(out), wait: { ops: d.wait }, refused: null };
      }
      d.passed();
      out.push(raw);
    }
    return { pass: out.length === 1 ? out[0]! : Buffer.concat(out), wait: null, refused: null };
  }

  private refuse(out: Buffer[], why: string): ScpStep {
    this.failed = why;
    return { pass: Buffer.concat(out), wait: null, refused: why };
  }

  private candidates(name: string): string[] {
    const dirs = this.stack[this.stack.length - 1]!;
    const out = dirs.map((d) => normalise(name, d));
    if (this.top && this.cmd.direction === 'upload') out.push(...dirs);
    return [...new Set(out)];
  }

  /** A record: why it is refused, or what passing it changes (and the operations that wait for approval first). */
  private record(rec: string): string | { passed(): void; wait: ScpDecided[] | null } {
    const none = { passed: () => undefined, wait: null };
    // a leading status byte (\0 ok) may precede the record
    const r = rec.replace(/^\0+/, '');
    const type = r[0];
    if (type === undefined || type === '\x01' || type === '\x02') return none; // warnings pass as they are
    if (type === 'T') return none;
    if (type === 'E') {
      return {
        passed: () => {
          if (this.stack.length > 1) this.stack.pop();
          if (this.stack.length === 1) this.top = this.cmd.direction === 'upload';
        },
        wait: null,
      };
    }
    const m = /^([CD])[0-7]{4} (\d{1,19}) (.+)$/.exec(r);
    if (!m) return `unexpected scp record`;
    const name = m[3]!;
    if (name.includes('/') || name === '..' || name === '.') return `scp record names a path, not a file name (${name})`;
    const paths = this.candidates(name);
    const op = this.cmd.direction === 'upload' ? (m[1] === 'C' ? 'write' : 'mkdir') : (m[1] === 'C' ? 'read' : 'list');
    const asks: ScpDecided[] = [];
    for (const path of paths) {
      const verdict = this.io.decide({ op, path });
      if (verdict.action === 'block') return `${op} ${path}: ${verdict.reason ?? (verdict.rule ? `refused by rule ${verdict.rule}` : 'refused by policy')}`;
      if (verdict.action === 'require_approval') asks.push({ op: { op, path }, verdict });
    }
    const passed = m[1] === 'C'
      ? () => void (this.data = Number(m[2]) + 1)
      : () => {
        this.stack.push(paths);
        this.top = false;
      };
    return { passed, wait: asks.length ? asks : null };
  }
}
