import { posix } from 'node:path';
import type { FileOp, CommandVerdict } from '../terminal/command-policy.types.js';

/**
 * An SFTP (version 3, draft-ietf-secsh-filexfer-02 as OpenSSH speaks it) proxy between the client's
 * `sftp` subsystem channel and the target's. Packets are framed both ways; every operation that
 * names a path (open for read or write, remove, rename, mkdir, rmdir, setstat, symlink, link) is
 * decided before it reaches the target, and a refused one is answered SSH_FX_PERMISSION_DENIED with
 * the reason. Operations on handles are allowed for what their open was allowed; FSETSTAT is decided
 * as a setstat of the handle's path. Data packets pass untouched. No I/O here: the session wires it.
 */

export const SFTP = {
  INIT: 1, VERSION: 2, OPEN: 3, CLOSE: 4, READ: 5, WRITE: 6, LSTAT: 7, FSTAT: 8, SETSTAT: 9, FSETSTAT: 10,
  OPENDIR: 11, READDIR: 12, REMOVE: 13, MKDIR: 14, RMDIR: 15, REALPATH: 16, STAT: 17, RENAME: 18, READLINK: 19,
  SYMLINK: 20, STATUS: 101, HANDLE: 102, DATA: 103, NAME: 104, ATTRS: 105, EXTENDED: 200, EXTENDED_REPLY: 201,
} as const;

const FX_PERMISSION_DENIED = 3;
const FX_OP_UNSUPPORTED = 8;
const FXF_READ = 1;
const FXF_WRITE_ANY = 0x02 | 0x04 | 0x08 | 0x10;
/** OpenSSH's own cap is 256 KiB; anything above this cannot be a real packet */
const MAX_PACKET = 1024 * 1024;
/** the id of the gateway's own REALPATH(".") (answered before any client request is forwarded) */
const HOME_ID = 0xfffffffe;
/** request ids from here on are the gateway's own (path resolutions); a client request using one is refused */
const GATEWAY_IDS = 0xffff0000;
const FX_FAILURE = 4;

/**
 * Client packets that name no path: relayed as they came, for what the open of their handle (or
 * nothing: stat, realpath, readlink read no data) allowed. Every other type is parsed and decided.
 */
const DECIDED = new Set<number>([SFTP.OPEN, SFTP.SETSTAT, SFTP.FSETSTAT, SFTP.OPENDIR, SFTP.REMOVE, SFTP.MKDIR, SFTP.RMDIR, SFTP.RENAME, SFTP.SYMLINK, SFTP.EXTENDED]);

/** Extensions that name no path and act on nothing the opens did not already decide. */
const HARMLESS_EXTENSIONS = new Set([
  'statvfs@openssh.com', 'fstatvfs@openssh.com', 'fsync@openssh.com', 'limits@openssh.com', 'expand-path@openssh.com',
  'home-directory', 'users-groups-by-id@openssh.com', 'copy-data',
]);

export class SftpProtocolError extends Error {}

/**
 * One SFTP packet (length prefix included) as it arrived: a packet that came in one chunk is a view
 * of it, a larger one (a 255 KiB WRITE arrives as eight channel chunks) the views of its pieces —
 * never copied, so that a data packet is relayed as the bytes it came in.
 */
export interface SftpPacket {
  type: number;
  /** bytes in all `parts` */
  length: number;
  parts: Buffer[];
}

/** The packet's bytes in one buffer (a copy only when it came in pieces). */
export function wholePacket(p: SftpPacket): Buffer {
  return p.parts.length === 1 ? p.parts[0]! : Buffer.concat(p.parts, p.length);
}

/** Yields whole SFTP packets from a byte stream, without joining or copying their pieces. */
export class SftpFramer {
  private parts: Buffer[] = [];
  /** bytes held in `parts` */
  private have = 0;
  /** the current packet's whole length (prefix included), 0 while its header has not all come */
  private want = 0;
  private type = 0;

  push(chunk: Buffer): SftpPacket[] {
    const out: SftpPacket[] = [];
    let rest = chunk;
    while (rest.length) {
      if (!this.want) {
        if (this.have || rest.length < 5) {
          // a header split across chunks: fewer than 5 bytes ever wait for the rest of it
          const need = 5 - this.have;
          const head = Buffer.concat([...this.parts, rest.subarray(0, need)]);
          rest = rest.subarray(need);
          this.parts = [head];
          this.have = head.length;
          if (head.length < 5) return out;
          this.header(head);
        } else {
          this.header(rest);
        }
      }
      const take = Math.min(this.want - this.have, rest.length);
      if (take) {
        this.parts.push(take === rest.length ? rest : rest.subarray(0, take));
        this.have += take;
        rest = rest.subarray(take);
      }
      if (this.have === this.want) {
        out.push({ type: this.type, length: this.want, parts: this.parts });
        this.parts = [];
        this.have = 0;
        this.want = 0;
      }
    }
    return out;
  }

  private header(b: Buffer): void {
    const len = b.readUInt32BE(0);
    if (len < 1 || len > MAX_PACKET) throw new SftpProtocolError(`SFTP packet of impossible length ${len}`);
    this.want = 4 + len;
    this.type = b[4]!;
  }
}

class Reader {
  pos = 5;
  constructor(private readonly p: Buffer) {}
  u32(): number {
    if (this.pos + 4 > this.p.length) throw new SftpProtocolError('truncated SFTP packet');
    const v = this.p.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  bytes(): Buffer {
    const n = this.u32();
    if (n > this.p.length - this.pos) throw new SftpProtocolError('truncated SFTP packet');
    const v = this.p.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  str(): string {
    return this.bytes().toString('utf8');
  }
}

function packet(type: number, parts: (number | Buffer | string)[]): Buffer {
  const bufs = parts.map((p) => {
    if (typeof p === 'number') {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(p >>> 0);
      return b;
    }
    const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
    const l = Buffer.alloc(4);
    l.writeUInt32BE(b.length);
    return Buffer.concat([l, b]);
  });
  const body = Buffer.concat([Buffer.from([type]), ...bufs]);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

export function statusPacket(id: number, code: number, message: string): Buffer {
  return packet(SFTP.STATUS, [id, code, message, '']);
}

export interface SftpDecision {
  op: FileOp;
  verdict: CommandVerdict;
}

export interface SftpProxyIo {
  toClient(b: Buffer): void;
  toUpstream(b: Buffer): void;
  /** a path operation: its verdict (require_approval resolves once decided) */
  decide(op: FileOp): CommandVerdict | Promise<CommandVerdict>;
  /** each decided operation, for the record */
  decided(d: SftpDecision): void;
  /**
   * resolve paths on the target before deciding (REALPATH through the upstream): a path rule must not
   * be walked around through a symlink (`ln -s /etc /tmp/x`, then a write to /tmp/x/passwd)
   */
  resolvePaths?(): boolean;
  /** the client broke the protocol (a packet that cannot be read): the channel is to be closed */
  failed(err: SftpProtocolError): void;
}

/**
 * One SFTP channel's proxy state. Client packets are handled strictly in order: while one waits for
 * a decision (an approval), the following ones wait behind it.
 */
export class SftpProxy {
  private readonly fromClient = new SftpFramer();
  private readonly fromUpstream = new SftpFramer();
  private home: string | null = null;
  private versionSeen = false;
  private queue: SftpPacket[] = [];
  private busy = false;
  /** a client packet could not be read: nothing more is taken from the client */
  private broken = false;
  private readonly pendingOpens = new Map<number, string>();
  private readonly handles = new Map<string, string>();
  /** the gateway's own REALPATH requests waiting for the target's answer */
  private readonly resolving = new Map<number, (path: string | null) => void>();
  private nextId = GATEWAY_IDS;

  constructor(private readonly io: SftpProxyIo) {}

  clientData(chunk: Buffer): void {
    if (this.broken) return;
    try {
      this.queue.push(...this.fromClient.push(chunk));
    } catch (err) {
      return this.fail(err);
    }
    void this.drain();
  }

  private fail(err: unknown): void {
    this.broken = true;
    this.queue = [];
    this.io.failed(err instanceof SftpProtocolError ? err : new SftpProtocolError(`SFTP request refused: ${(err as Error).message}`));
  }

  upstreamData(chunk: Buffer): void {
    for (const p of this.fromUpstream.push(chunk)) {
      // file contents (DATA) once the handshake is done: relayed in the pieces they came in
      // (not while the gateway's own requests wait: their answers are never DATA, but a target's are read)
      if (p.type === SFTP.DATA && this.home !== null && !this.resolving.size) this.relay(p, this.io.toClient);
      else this.upstreamPacket(wholePacket(p));
    }
  }

  private relay(p: SftpPacket, to: (b: Buffer) => void): void {
    for (const b of p.parts) to(b);
  }

  /** how many client packets wait (the session stops reading the client past a bound) */
  get waiting(): number {
    return this.queue.length;
  }

  private upstreamPacket(p: Buffer): void {
    const type = p[4];
    if (type === SFTP.VERSION && !this.versionSeen) {
      this.versionSeen = true;
      this.io.toClient(p);
      // where relative paths start: asked once, before any client request goes through
      this.io.toUpstream(packet(SFTP.REALPATH, [HOME_ID, '.']));
      return;
    }
    if (p.length >= 9) {
      const id = p.readUInt32BE(5);
      if (id === HOME_ID && this.home === null) {
        if (type === SFTP.NAME) {
          const r = new Reader(p);
          r.u32();
          const count = r.u32();
          this.home = count > 0 ? normalise(r.str(), '/') : '/';
        } else {
          this.home = '/';
        }
        void this.drain();
        return;
      }
      const resolved = this.resolving.get(id);
      if (resolved) {
        this.resolving.delete(id);
        let path: string | null = null;
        if (type === SFTP.NAME) {
          const r = new Reader(p);
          r.u32();
          if (r.u32() > 0) path = r.str();
        }
        resolved(path !== null && path.startsWith('/') && !path.includes('\0') ? normalise(path, '/') : null);
        return;
      }
      if (type === SFTP.HANDLE && this.pendingOpens.has(id)) {
        const r = new Reader(p);
        r.u32();
        this.handles.set(r.bytes().toString('latin1'), this.pendingOpens.get(id)!);
      }
      if (type === SFTP.HANDLE || type === SFTP.STATUS) this.pendingOpens.delete(id);
    }
    this.io.toClient(p);
  }

  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length) {
        const p = this.queue[0]!;
        if (p.type !== SFTP.INIT && this.home === null) return; // waits for the home directory
        this.queue.shift();
        // only a decision that waits (an approval) is awaited: data packets go through synchronously
        const pending = this.clientPacket(p);
        if (pending) await pending;
      }
    } catch (err) {
      // inside this promise, a thrown error would be an unhandled rejection: the channel closes instead
      this.fail(err);
    } finally {
      this.busy = false;
    }
  }

  private path(raw: string): string {
    return normalise(raw, this.home ?? '/');
  }

  private clientPacket(packet: SftpPacket): Promise<void> | void {
    const type = packet.type;
    if (type === SFTP.INIT) {
      this.relay(packet, this.io.toUpstream);
      return;
    }
    if (packet.length < 9) throw new SftpProtocolError('truncated SFTP packet');
    const head = packet.parts[0]!.length >= 9 ? packet.parts[0]! : wholePacket(packet);
    const id = head.readUInt32BE(5);
    // of every request, not only the decided ones: a client REALPATH with the id of the gateway's
    // own would answer the gateway's resolution of another path
    if (id >= GATEWAY_IDS) {
      this.io.toClient(statusPacket(id, FX_FAILURE, 'request ids from 0xffff0000 are reserved by the gateway'));
      return;
    }
    if (!DECIDED.has(type)) {
      // READ, WRITE (the bulk of a transfer), CLOSE, stats: relayed as they came, without a copy
      this.relay(packet, this.io.toUpstream);
      return;
    }
    const p = wholePacket(packet);
    const r = new Reader(p);
    r.u32();
    let op: FileOp | null = null;
    let unsupported: string | null = null;
    switch (type) {
      case SFTP.OPEN: {
        const path = this.path(r.str());
        const flags = r.u32();
        op = { op: flags & FXF_WRITE_ANY ? 'write' : 'read', path };
        if (flags & FXF_WRITE_ANY && flags & FXF_READ) op = { op: 'write', path };
        break;
      }
      case SFTP.SETSTAT:
        op = { op: 'setstat', path: this.path(r.str()) };
        break;
      case SFTP.FSETSTAT: {
        const path = this.handles.get(r.bytes().toString('latin1'));
        if (path === undefined) unsupported = 'unknown handle';
        else op = { op: 'setstat', path };
        break;
      }
      case SFTP.OPENDIR:
        op = { op: 'list', path: this.path(r.str()) };
        break;
      case SFTP.REMOVE:
        op = { op: 'remove', path: this.path(r.str()) };
        break;
      case SFTP.MKDIR:
        op = { op: 'mkdir', path: this.path(r.str()) };
        break;
      case SFTP.RMDIR:
        op = { op: 'rmdir', path: this.path(r.str()) };
        break;
      case SFTP.RENAME: {
        const from = this.path(r.str());
        op = { op: 'rename', path: from, target: this.path(r.str()) };
        break;
      }
      case SFTP.SYMLINK: {
        // OpenSSH sends (target, link) — the reverse of the draft's order
        const target = r.str();
        const link = this.path(r.str());
        // a relative target is relative to the link's directory, not the login's
        op = { op: 'symlink', path: link, target: normalise(target, posix.dirname(link)) };
        break;
      }
      case SFTP.EXTENDED: {
        const name = r.str();
        if (name === 'posix-rename@openssh.com') {
          const from = this.path(r.str());
          op = { op: 'rename', path: from, target: this.path(r.str()) };
        } else if (name === 'hardlink@openssh.com') {
          const from = this.path(r.str());
          op = { op: 'link', path: this.path(r.str()), target: from };
        } else if (name === 'lsetstat@openssh.com') {
          op = { op: 'setstat', path: this.path(r.str()) };
        } else if (!HARMLESS_EXTENSIONS.has(name)) {
          unsupported = `extension ${name} is not supported through the gateway`;
        }
        break;
      }
      default:
        break; // not reached: the types above are DECIDED's
    }
    if (unsupported) {
      this.io.toClient(statusPacket(id, FX_OP_UNSUPPORTED, unsupported));
      return;
    }
    if (!op) {
      this.io.toUpstream(p);
      return;
    }
    // the target reads paths as C strings: "/x.pem\0.txt" would be decided as one file and open another
    if (op.path.includes('\0') || ('target' in op && op.target.includes('\0'))) {
      this.apply(p, type, id, op, { action: 'block', rule: null, reason: 'a path with a NUL byte is refused' });
      return;
    }
    const decided = op;
    if (!this.io.resolvePaths?.()) {
      const verdict = this.decideOne(op);
      if (verdict instanceof Promise) return verdict.then((v) => this.apply(p, type, id, decided, v));
      return this.apply(p, type, id, op, verdict);
    }
    return this.decideResolved(op).then(({ op: o, verdict }) => this.apply(p, type, id, o, verdict));
  }

  private decideOne(op: FileOp): CommandVerdict | Promise<CommandVerdict> {
    const failed: CommandVerdict = { action: 'block', rule: null, reason: 'the operation could not be decided' };
    try {
      const v = this.io.decide(op);
      return v instanceof Promise ? v.catch(() => failed) : v;
    } catch {
      return failed;
    }
  }

  /**
   * Decides an operation as the client named it and as the target would resolve it: each path through
   * REALPATH on the target (symlinks in its directories, and the final one where the operation follows
   * it), the most restrictive verdict winning. A path the target cannot resolve is refused (fail closed):
   * the rule would need a resolution it cannot get. A hard link is also a write of what it links to
   * (writing through the link writes that file, and no path resolution shows it).
   */
  private async decideResolved(op: FileOp): Promise<{ op: FileOp; verdict: CommandVerdict }> {
    const candidates: FileOp[] = [op];
    const follows = op.op === 'read' || op.op === 'write' || op.op === 'setstat' || op.op === 'list';
    const path = follows ? await this.resolve(op.path) : await this.resolveParent(op.path);
    let target: string | null | undefined;
    if ('target' in op) target = op.op === 'symlink' ? op.target : op.op === 'link' ? await this.resolve(op.target) : await this.resolveParent(op.target);
    if (path === null || target === null) {
      return { op, verdict: { action: 'block', rule: null, reason: `${op.op} ${op.path}: the path could not be resolved on the target, so the policy's path rules cannot be applied; refused` } };
    }
    const resolved: FileOp = 'target' in op ? { ...op, path, target: target! } : { ...op, path };
    if (resolved.path !== op.path || ('target' in op && 'target' in resolved && resolved.target !== op.target)) candidates.push(resolved);
    if (op.op === 'link') candidates.push({ op: 'write', path: target! });
    let last: { op: FileOp; verdict: CommandVerdict } = { op, verdict: { action: 'allow', rule: null, reason: null } };
    for (const c of candidates) {
      const verdict = await this.decideOne(c);
      if (verdict.action !== 'allow') return { op: c, verdict };
      if (c !== op) this.io.decided({ op: c, verdict });
      last = { op, verdict };
    }
    return last;
  }

  /** The target's REALPATH of `path` (symlinks followed, the last component may not exist), or null. */
  private resolve(path: string): Promise<string | null> {
    if (this.nextId >= HOME_ID - 1) this.nextId = GATEWAY_IDS;
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.resolving.set(id, resolve);
      this.io.toUpstream(packet(SFTP.REALPATH, [id, path]));
    });
  }

  /** The path with its directory resolved on the target and its last component as named (operations on the entry itself). */
  private async resolveParent(path: string): Promise<string | null> {
    if (path === '/') return '/';
    const dir = await this.resolve(posix.dirname(path));
    return dir === null ? null : normalise(posix.basename(path), dir);
  }

  private apply(p: Buffer, type: number, id: number, op: FileOp, verdict: CommandVerdict): void {
    this.io.decided({ op, verdict });
    if (verdict.action !== 'allow') {
      const why = verdict.reason ?? (verdict.rule ? `refused by rule ${verdict.rule}` : 'refused by policy');
      this.io.toClient(statusPacket(id, FX_PERMISSION_DENIED, `${op.op} ${op.path}: ${why}`));
      return;
    }
    if (type === SFTP.OPEN) this.pendingOpens.set(id, op.path);
    this.io.toUpstream(p);
  }
}

/** An absolute, lexically normalised path (`..` resolved, no trailing slash) of `raw` relative to `home`. */
export function normalise(raw: string, home: string): string {
  const abs = raw.startsWith('/') ? raw : posix.join(home, raw);
  const n = posix.normalize(abs);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}
