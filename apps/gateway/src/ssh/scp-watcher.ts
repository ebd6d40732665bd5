import { posix } from 'node:path';
import { normalise } from './sftp-proxy.js';
import type { FileOp } from './ssh-policy.types.js';

/**
 * Legacy SCP (`scp -O`): the client runs `scp -t <target>` (upload) or `scp -f <source>…`
 * (download) on the host, and the sending side streams records — `C<mode> <size> <name>` then the
 * file's bytes, `D<mode> 0 <name>` to enter a directory, `E` to leave it, `T…` times. The watcher
 * reads the sender's stream and decides each file and directory by its full path before its record
 * passes; the caller ends the transfer on a refusal. No I/O here.
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

export class ScpWatcher {
  private line: number[] = [];
  /** bytes of file data (plus its trailing status byte) still to pass */
  private data = 0;
  /** the directories records are in: several candidates at the top of an upload (the target may be a directory or a new name) */
  private stack: string[][];
  private failed: string | null = null;

  constructor(
    private readonly cmd: ScpCommand,
    private readonly io: { decide(op: FileOp): string | null },
    home = '/',
  ) {
    const first = cmd.paths[0]!;
    if (cmd.direction === 'upload') {
      const target = normalise(first, home);
      // `scp f host:T`: T/f when T is a directory, else T itself — both are decided
      this.stack = [[target]];
      this.top = true;
    } else {
      this.stack = [[normalise(posix.dirname(first), home)]];
      this.top = false;
    }
  }

  /** at the top level of an upload: a record's path is the target itself or inside it */
  private top: boolean;

  /** Feeds the sender's bytes; returns why the transfer is refused, or null. */
  push(chunk: Buffer): string | null {
    if (this.failed) return this.failed;
    for (let i = 0; i < chunk.length; i++) {
      if (this.data > 0) {
        const take = Math.min(this.data, chunk.length - i);
        this.data -= take;
        i += take - 1;
        continue;
      }
      const b = chunk[i]!;
      if (b !== 0x0a) {
        if (this.line.length >= MAX_RECORD) return (this.failed = 'scp record too long');
        this.line.push(b);
        continue;
      }
      const rec = Buffer.from(this.line).toString('utf8');
      this.line = [];
      const err = this.record(rec);
      if (err) return (this.failed = err);
    }
    return null;
  }

  private candidates(name: string): string[] {
    const dirs = this.stack[this.stack.length - 1]!;
    const out = dirs.map((d) => normalise(name, d));
    if (this.top && this.cmd.direction === 'upload') out.push(...dirs);
    return [...new Set(out)];
  }

  private record(rec: string): string | null {
    // a leading status byte (\0 ok) may precede the record
    const r = rec.replace(/^\0+/, '');
    const type = r[0];
    if (type === undefined || type === '\x01' || type === '\x02') return null; // warnings pass as they are
    if (type === 'T') return null;
    if (type === 'E') {
      if (this.stack.length > 1) this.stack.pop();
      if (this.stack.length === 1) this.top = this.cmd.direction === 'upload';
      return null;
    }
    const m = /^([CD])[0-7]{4} (\d{1,19}) (.+)$/.exec(r);
    if (!m) return `unexpected scp record`;
    const name = m[3]!;
    if (name.includes('/') || name === '..' || name === '.') return `scp record names a path, not a file name (${name})`;
    const paths = this.candidates(name);
    const op = this.cmd.direction === 'upload' ? (m[1] === 'C' ? 'write' : 'mkdir') : (m[1] === 'C' ? 'read' : 'list');
    for (const path of paths) {
      const why = this.io.decide({ op, path });
      if (why) return why;
    }
    if (m[1] === 'C') {
      this.data = Number(m[2]) + 1;
    } else {
      this.stack.push(paths);
      this.top = false;
    }
    return null;
  }
}
