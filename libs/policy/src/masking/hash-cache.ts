import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import type { RowOutput } from './masking.types.js';

/** Inputs of more UTF-8 bytes than this are hashed every time: the cache holds short values (emails, cards, names). */
const HASH_CACHE_MAX_INPUT = 128;
/**
 * Entries per cache generation; two generations are kept. A working set between one and two
 * generations thrashes (each value moves to the current generation on every other access, and some
 * fall out), so one generation is sized for a table of customers: 16384 inputs (pgbench's 10,000
 * emails: 100 % hits; with 8192, 52 % hits, 39 % moved, 9 % HMAC). At most 2 × 16384 inputs of
 * <= 128 bytes per key: ~5 MB at the very most, ~2 MB for 20-byte emails.
 */
const HASH_CACHE_GENERATION = 16384;
/** `h:` and 16 hex digits */
const HASH_OUT_LEN = 18;
const HEX = Buffer.from('0123456789abcdef', 'latin1');

/** FNV-1a of bytes[start, end), finalised (murmur3 fmix32) so that the low bits used for slots mix all of it. */
function bytesHash(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let p = start; p < end; p++) h = Math.imul(h ^ bytes[p], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * One generation of the hash cache: an open-addressing table (linear probing, at most half full)
 * keyed by the input's UTF-8 bytes. A slot is two int32s, the input's hash and its record's offset
 * + 1 in one arena (0: empty); a record is the key's length (one byte: keys are <= 128 bytes), the
 * HASH_OUT_LEN output bytes, then the key. A hit reads one slot and one record: two cache lines,
 * where separate arrays of hashes, lengths, keys and outputs cost a cache miss each. Hashing and
 * comparing bytes costs less than decoding them for a Map of strings.
 */
class HashGeneration {
  size = 0;
  private readonly slots = new Int32Array(HASH_CACHE_GENERATION * 4);
  arena = Buffer.alloc(64 * 1024);
  private used = 0;

  /** The arena offset of the output of bytes[start, end) (hash h), or -1. */
  find(bytes: Uint8Array, start: number, end: number, h: number): number {
    const slots = this.slots;
    const mask = slots.length - 2;
    const len = end - start;
    for (let s = (h << 1) & mask; ; s = (s + 2) & mask) {
      const rec = slots[s + 1] - 1;
      if (rec < 0) return -1;
      const arena = this.arena;
      if (slots[s] !== h || arena[rec] !== len) continue;
      const at = rec + 1 + HASH_OUT_LEN - start;
      let p = start;
      while (p < end && arena[at + p] === bytes[p]) p++;
      if (p === end) return rec + 1;
    }
  }

  /**
   * Adds bytes[start, end) (not present, at most HASH_CACHE_MAX_INPUT bytes; the generation not
   * full) with the output at src[srcAt..]; returns the arena offset of its output.
   */
  add(bytes: Uint8Array, start: number, end: number, h: number, src: Uint8Array, srcAt: number): number {
    const len = end - start;
    const need = this.used + 1 + HASH_OUT_LEN + len;
    if (need > this.arena.length) {
      const grown = Buffer.alloc(Math.max(this.arena.length * 2, need));
      this.arena.copy(grown, 0, 0, this.used);
      this.arena = grown;
    }
    const arena = this.arena;
    const rec = this.used;
    arena[rec] = len;
    for (let k = 0; k < HASH_OUT_LEN; k++) arena[rec + 1 + k] = src[srcAt + k];
    for (let p = 0; p < len; p++) arena[rec + 1 + HASH_OUT_LEN + p] = bytes[start + p];
    this.used = need;
    this.size++;
    const slots = this.slots;
    const mask = slots.length - 2;
    let s = (h << 1) & mask;
    while (slots[s + 1] !== 0) s = (s + 2) & mask;
    slots[s] = h;
    slots[s + 1] = rec + 1;
    return rec + 1;
  }

  clear(): void {
    this.slots.fill(0);
    this.size = 0;
    this.used = 0;
  }
}

/**
 * Keyed HMAC-SHA256 of masked values (`h:` + the first 16 hex digits) with a bounded cache of
 * recent results. The HMAC is a function of the input's UTF-8 bytes, so the cache is keyed by them
 * (a DataRow value is looked up without being decoded) and a cached output is exactly what hashing
 * again would give; one Hasher per key Buffer is shared by every plan made with it (sessions of the
 * same tenant see the same emails again and again). The cache is two generations, an LRU
 * approximation with O(1) eviction: a hit in the old generation moves to the current one, and a full
 * current generation becomes the old one (the old one is dropped whole, its arrays reused).
 */
export class Hasher {
  private readonly key: KeyObject;
  /** a copy of the key bytes: a caller that rewrites its key Buffer in place gets a new Hasher */
  readonly keyBytes: Buffer;
  private current: HashGeneration | null = null;
  private previous: HashGeneration | null = null;
  /** an output being moved or computed */
  private readonly tmp = Buffer.alloc(HASH_OUT_LEN);
  /** UTF-8 of a string input */
  private readonly scratch = Buffer.alloc(3 * HASH_CACHE_MAX_INPUT);
  /** where lookup() left the output: outBuf[outAt, outAt + HASH_OUT_LEN) */
  private outBuf: Buffer = this.tmp;
  private outAt = 0;

  constructor(key: Buffer) {
    this.keyBytes = Buffer.from(key);
    this.key = createSecretKey(this.keyBytes);
  }

  hash(v: string): string {
    if (v.length > HASH_CACHE_MAX_INPUT) {
      // more than 128 UTF-16 units is more than 128 UTF-8 bytes: never cached
      const b = Buffer.from(v, 'utf8');
      this.hmacInto(b, 0, b.length, this.tmp, 0);
      return this.tmp.toString('latin1');
    }
    const n = this.scratch.write(v, 0, 'utf8');
    this.lookup(this.scratch, 0, n);
    return this.outBuf.toString('latin1', this.outAt, this.outAt + HASH_OUT_LEN);
  }

  /** The hash of the UTF-8 text bytes[start, end) becomes value i of `out`. */
  hashInto(bytes: Uint8Array, start: number, end: number, out: RowOutput, i: number): void {
    this.lookup(bytes, start, end);
    const at = out.reserve(i, HASH_OUT_LEN);
    const buf = out.buf;
    const src = this.outBuf;
    const from = this.outAt;
    for (let k = 0; k < HASH_OUT_LEN; k++) buf[at + k] = src[from + k];
  }

  private lookup(bytes: Uint8Array, start: number, end: number): void {
    if (end - start > HASH_CACHE_MAX_INPUT) {
      this.hmacInto(bytes, start, end, this.tmp, 0);
      this.outBuf = this.tmp;
      this.outAt = 0;
      return;
    }
    const h = bytesHash(bytes, start, end);
    let cur = this.current ??= new HashGeneration();
    const rec = cur.find(bytes, start, end, h);
    if (rec >= 0) {
      this.outBuf = cur.arena;
      this.outAt = rec;
      return;
    }
    const prev = this.previous;
    const old = prev ? prev.find(bytes, start, end, h) : -1;
    if (old >= 0) prev!.arena.copy(this.tmp, 0, old, old + HASH_OUT_LEN);
    else this.hmacInto(bytes, start, end, this.tmp, 0);
    if (cur.size >= HASH_CACHE_GENERATION) {
      const next = prev ?? new HashGeneration();
      next.clear();
      this.previous = cur;
      this.current = cur = next;
    }
    this.outAt = cur.add(bytes, start, end, h, this.tmp, 0);
    this.outBuf = cur.arena;
  }

  private hmacInto(bytes: Uint8Array, start: number, end: number, dst: Buffer, at: number): void {
    const d = createHmac('sha256', this.key).update(bytes.subarray(start, end)).digest();
    dst[at] = 104; // h
    dst[at + 1] = 58; // :
    for (let k = 0; k < 8; k++) {
      dst[at + 2 + 2 * k] = HEX[d[k] >>> 4];
      dst[at + 3 + 2 * k] = HEX[d[k] & 15];
    }
  }
}

const hashers = new WeakMap<Buffer, Hasher>();

/** The Hasher of a key (once per plan, not per value). */
export function hasherFor(key: Buffer): Hasher {
  let h = hashers.get(key);
  if (!h || !h.keyBytes.equals(key)) { h = new Hasher(key); hashers.set(key, h); }
  return h;
}
