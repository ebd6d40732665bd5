import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { CopyLineCodec, copyDecode, copyEncode, isDefaultCopyFormat, type CopyFormat } from './copy-format.js';
import { BUILTIN_DETECTORS, anyMayMatch, findAll, textFacts, FACT, type Detector, type Finding, type TextFacts } from './detectors.js';
import { MaskingError } from './errors.js';
import {
  FIRST_NORMAL_OID, JSON_OIDS, JSONB_OID, TEXT_ARRAY_ELEMENT, TEXT_LIKE_OIDS, TYPE_NAMES, canonicalTypeName,
} from './pg-types.js';
import type { MaskingRule, PolicyDocument } from './policy-document.js';

/**
 * The masking engine. A plan is made once per result set from its RowDescription: each column is
 * either masked whole by the first column rule that covers it (by name, table.column, or type),
 * scanned by content detectors (text-like columns no column rule covers), or left alone.
 *
 * Strategies: `redact` → the rule's token (default `[REDACTED]`); `partial` → letters and digits
 * replaced by `*` except the last `keepLast` (default 4; all of them when the value has no more
 * than that), separators kept (`***-**-6789`); an email keeps its first character and its domain
 * (`a****@example.com`); `hash` → `h:` + 16 hex chars of HMAC-SHA256 under the tenant's key (cards,
 * phones and SSNs are hashed as digits only, emails lower-cased, so joins work across formats);
 * `null` → SQL NULL (a detector hit with `null` nulls the whole value).
 * JSON columns stay valid JSON: whole-value masks become JSON strings, replacements inside JSON
 * strings are escaped.
 */

export interface ResultField {
  name: string;
  tableOid: number;
  columnAttr: number;
  typeOid: number;
  format: 0 | 1;
  /** `schema.table` when the caller resolved tableOid */
  table?: string;
  /**
   * The table column this result column is (from tableOid/columnAttr), when the caller resolved it and
   * the query named it otherwise (`SELECT ssn AS x`): column rules match either name.
   */
  column?: string;
}

export interface MaskingOptions {
  hmacKey: Buffer;
}

/**
 * A row's values as bytes in place (@portcullis/protocol's DataRowView satisfies it): value i is
 * `payload[starts[i], starts[i] + lengths[i])`, SQL NULL when `lengths[i]` is -1.
 */
export interface RowValues {
  readonly payload: Buffer;
  readonly count: number;
  readonly starts: Int32Array;
  readonly lengths: Int32Array;
}

/**
 * Where maskDataRow writes the values it replaces, in increasing column order; values it does not
 * touch keep their bytes (@portcullis/protocol's DataRowWriter satisfies it).
 */
export interface RowOutput {
  setNull(i: number): void;
  /** value i becomes the UTF-8 of s */
  setString(i: number, s: string): void;
  setBytes(i: number, src: Uint8Array, start: number, end: number): void;
  /** value i becomes `len` bytes the caller writes at `buf[returned offset ...]` right away */
  reserve(i: number, len: number): number;
  readonly buf: Uint8Array;
}

export interface MaskingPlan {
  kind: 'plan';
  /**
   * Masks one row read in place (the relay's hot path): replaced values go to `out`, the rest are
   * not touched; returns how many values it replaced (0: the row goes out as it came). Same results
   * as maskRow on the decoded values. Columns no rule or detector can touch are never looked at.
   */
  maskDataRow(row: RowValues, out: RowOutput): number;
  /**
   * Masks one row (DataRow values in field order). Same array and changed=0 when nothing changed.
   * A masked text-format value comes back as a string (its UTF-8 is the new value), so an encoder
   * writes it straight into the new DataRow (encodeDataRow does) instead of through a Buffer copy;
   * binary values (jsonb, arrays) come back as Buffers.
   */
  maskRow(values: (Buffer | null)[]): { values: (Buffer | string | null)[]; changed: number };
  /** Masks one COPY … TO STDOUT text-format line (tab-separated, \N null, backslash escapes). */
  maskCopyLine(line: Buffer): Buffer;
  /**
   * The line masker of one `COPY … TO STDOUT` in `format` (text with any delimiter and NULL string,
   * or CSV): call it once per CopyData message, in order — with HEADER the first line is the header,
   * which must name the plan's columns and passes as it came. Returns the line itself when nothing
   * in it changed. Throws MaskingError for a format it cannot read exactly (see copyFormatProblem)
   * and for a line that does not fit the format or the plan (wrong column count…).
   * The default format gets maskCopyLine.
   */
  copyLineMasker(format: CopyFormat): (line: Buffer) => Buffer;
  maskedColumns: string[];
  stats(): { values: number; byRule: Record<string, number> };
  /** values masked so far: stats().values without copying the per-rule counts (read per COPY line) */
  readonly maskedValues: number;
}

export interface MaskingRefusal {
  kind: 'refuse';
  reason: string;
}

const DEFAULT_TOKEN = '[REDACTED]';
const DEFAULT_KEEP_LAST = 4;

interface CompiledRule {
  /** the slot of its per-plan counter: its name's position in CompiledMasking.ruleNames */
  id: number;
  name: string;
  strategy: MaskingRule['strategy'];
  keepLast: number;
  token: string;
  selectors: string[][] | null;
  types: Set<string> | null;
  detectors: Detector[] | null;
}

interface CompiledMasking {
  columnRules: CompiledRule[];
  detectorRules: CompiledRule[];
  /** rule names by id */
  ruleNames: string[];
  /** every detector of every detector rule, for maskText */
  all: { detectors: Detector[]; ruleOf: Map<string, CompiledRule> } | null;
}

export function splitName(text: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') { if (text[i + 1] === '"') { cur += '"'; i++; } else quoted = false; } else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === '.') { parts.push(cur.toLowerCase()); cur = ''; }
    else cur += c;
  }
  parts.push(cur.toLowerCase());
  return parts.map((p) => p.trim());
}

const compiledCache = new WeakMap<PolicyDocument, CompiledMasking>();

function compileMasking(doc: PolicyDocument): CompiledMasking {
  const hit = compiledCache.get(doc);
  if (hit) return hit;
  const custom = new Map<string, Detector>();
  for (const d of doc.detectors ?? []) custom.set(d.name, { name: d.name, regex: new RegExp(d.pattern, `${d.flags ?? ''}g`) });
  const detectorsNamed = (name: string): Detector[] => {
    const c = custom.get(name);
    return c ? [c] : BUILTIN_DETECTORS.filter((d) => d.name === name);
  };
  const columnRules: CompiledRule[] = [];
  const detectorRules: CompiledRule[] = [];
  const ruleNames: string[] = [];
  for (const r of doc.masking ?? []) {
    // rules are counted by name (names are unique in a parsed document; were they not, one counter)
    const known = ruleNames.indexOf(r.name);
    const rule: CompiledRule = {
      id: known >= 0 ? known : ruleNames.push(r.name) - 1,
      name: r.name,
      strategy: r.strategy,
      keepLast: r.keepLast ?? DEFAULT_KEEP_LAST,
      token: r.token ?? DEFAULT_TOKEN,
      selectors: r.columns ? r.columns.map(splitName) : null,
      types: r.types ? new Set(r.types.map(canonicalTypeName)) : null,
      detectors: r.detectors ? r.detectors.flatMap(detectorsNamed) : null,
    };
    (rule.detectors ? detectorRules : columnRules).push(rule);
  }
  const compiled: CompiledMasking = { columnRules, detectorRules, ruleNames, all: detectorSet(detectorRules) };
  compiledCache.set(doc, compiled);
  return compiled;
}

function detectorSet(rules: CompiledRule[]): CompiledMasking['all'] {
  const detectors: Detector[] = [];
  const ruleOf = new Map<string, CompiledRule>();
  for (const r of rules) {
    for (const d of r.detectors ?? []) {
      if (ruleOf.has(d.name) && ruleOf.get(d.name) !== r) continue; // first rule naming a detector wins
      ruleOf.set(d.name, r);
      if (!detectors.includes(d)) detectors.push(d);
    }
  }
  return detectors.length ? { detectors, ruleOf } : null;
}

function typeNameOf(oid: number): string {
  return TYPE_NAMES.get(oid) ?? `oid:${oid}`;
}

function selectorMatches(sel: string[], f: ResultField): boolean {
  const col = sel[sel.length - 1];
  if (f.name.toLowerCase() !== col && f.column?.toLowerCase() !== col) return false;
  if (sel.length === 1) return true;
  // table unknown (not resolved, or a computed column): match on the name alone — mask rather than leak
  if (!f.table) return true;
  const table = splitName(f.table);
  if (sel.length === 2) return table[table.length - 1] === sel[0];
  return table.slice(-2).join('.') === sel.slice(-3, -1).join('.');
}

function ruleCovers(r: CompiledRule, f: ResultField): boolean {
  if (r.selectors && r.selectors.some((s) => selectorMatches(s, f))) return true;
  if (r.types && (r.types.has(typeNameOf(f.typeOid)) || r.types.has(String(f.typeOid)))) return true;
  return false;
}

type Codec = 'text' | 'jsonb-binary' | 'text-array-binary';

interface ColumnPlan {
  index: number;
  field: ResultField;
  codec: Codec;
  json: boolean;
  rule: CompiledRule | null;
  scan: { detectors: Detector[]; ruleOf: Map<string, CompiledRule> } | null;
}

function scannable(f: ResultField): boolean {
  if (TEXT_LIKE_OIDS.has(f.typeOid) || TEXT_ARRAY_ELEMENT.has(f.typeOid)) return true;
  return f.format === 0 && f.typeOid >= FIRST_NORMAL_OID;
}

function codecFor(f: ResultField): Codec | null {
  if (f.format === 0) return 'text';
  if (f.typeOid === JSONB_OID) return 'jsonb-binary';
  if (TEXT_LIKE_OIDS.has(f.typeOid)) return 'text';
  if (TEXT_ARRAY_ELEMENT.has(f.typeOid)) return 'text-array-binary';
  return null;
}

interface PlanDraft {
  columns: ColumnPlan[];
  refusal: string | null;
  explain: Record<string, unknown>[];
  ruleNames: string[];
}

function draftPlan(doc: PolicyDocument, fields: ResultField[]): PlanDraft {
  const m = compileMasking(doc);
  const columns: ColumnPlan[] = [];
  const explain: Record<string, unknown>[] = [];
  let refusal: string | null = null;
  fields.forEach((f, index) => {
    const type = typeNameOf(f.typeOid);
    const base = { index, column: f.name, table: f.table ?? null, type, format: f.format === 1 ? 'binary' : 'text' };
    const rule = m.columnRules.find((r) => ruleCovers(r, f)) ?? null;
    const json = JSON_OIDS.has(f.typeOid) || f.typeOid === 199 || f.typeOid === 3807;
    if (rule) {
      const codec = codecFor(f);
      if (codec === null && rule.strategy !== 'null') {
        const why = `column "${f.name}" (${type}, binary format) is covered by masking rule "${rule.name}" whose strategy ${rule.strategy} cannot be applied to binary ${type} values; request text format or use strategy null`;
        refusal ??= why;
        explain.push({ ...base, action: 'refuse', rule: rule.name, strategy: rule.strategy, reason: why });
        return;
      }
      columns.push({ index, field: f, codec: codec ?? 'text', json, rule, scan: null });
      explain.push({ ...base, action: 'mask', rule: rule.name, strategy: rule.strategy });
      return;
    }
    if (!scannable(f)) {
      explain.push({ ...base, action: 'none' });
      return;
    }
    const applicable = m.detectorRules.filter((r) => (!r.selectors && !r.types) || ruleCovers(r, f));
    const scan = detectorSet(applicable);
    if (!scan) {
      explain.push({ ...base, action: 'none' });
      return;
    }
    const codec = codecFor(f);
    if (codec === null) {
      explain.push({ ...base, action: 'none', note: 'binary format of a non-text type is not scanned' });
      return;
    }
    columns.push({ index, field: f, codec, json, rule: null, scan });
    explain.push({
      ...base,
      action: 'scan',
      detectors: [...new Set(scan.detectors.map((d) => d.name))].map((d) => ({ detector: d, rule: scan.ruleOf.get(d)!.name, strategy: scan.ruleOf.get(d)!.strategy })),
    });
  });
  return { columns, refusal, explain, ruleNames: m.ruleNames };
}

// ---- strategies ----

const EMAIL_WHOLE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function isAlnum(c: string): boolean {
  const x = c.charCodeAt(0);
  return (x >= 48 && x <= 57) || (x >= 65 && x <= 90) || (x >= 97 && x <= 122) || (x > 127 && /[\p{L}\p{N}]/u.test(c));
}

export function partialMask(s: string, keepLast: number): string {
  const at = s.lastIndexOf('@');
  if (at > 0 && EMAIL_WHOLE.test(s)) {
    if (isAscii(s, at)) return s[0] + '*'.repeat(at - 1) + s.slice(at);
    const local = [...s.slice(0, at)];
    return local[0] + '*'.repeat(local.length - 1) + s.slice(at);
  }
  if (isAscii(s, s.length)) return partialAscii(s, keepLast);
  const chars = [...s];
  let alnum = 0;
  for (const c of chars) if (isAlnum(c)) alnum++;
  let keep = alnum > keepLast ? keepLast : 0;
  for (let i = chars.length - 1; i >= 0; i--) {
    if (!isAlnum(chars[i])) continue;
    if (keep > 0) { keep--; continue; }
    chars[i] = '*';
  }
  return chars.join('');
}

function isAscii(s: string, end: number): boolean {
  for (let i = 0; i < end; i++) if (s.charCodeAt(i) > 127) return false;
  return true;
}

function isAlnumCode(x: number): boolean {
  return (x >= 48 && x <= 57) || (x >= 65 && x <= 90) || (x >= 97 && x <= 122);
}

/** partialMask of an ASCII string: one character per code unit, no code point splitting needed. */
function partialAscii(s: string, keepLast: number): string {
  let alnum = 0;
  for (let i = 0; i < s.length; i++) if (isAlnumCode(s.charCodeAt(i))) alnum++;
  // the last `keep` letters/digits stay: find where the kept tail starts
  let keep = alnum > keepLast ? keepLast : 0;
  let tail = s.length;
  while (keep > 0) { tail--; if (isAlnumCode(s.charCodeAt(tail))) keep--; }
  let out = '';
  for (let i = 0; i < tail; i++) out += isAlnumCode(s.charCodeAt(i)) ? '*' : s[i];
  return out + s.slice(tail);
}

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
class Hasher {
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
function hasherFor(key: Buffer): Hasher {
  let h = hashers.get(key);
  if (!h || !h.keyBytes.equals(key)) { h = new Hasher(key); hashers.set(key, h); }
  return h;
}

function hashValue(s: string, hasher: Hasher, detector?: string): string {
  let v = s;
  if (detector === 'CREDIT_CARD' || detector === 'US_SSN' || detector === 'PHONE') v = s.replace(/\D/g, '');
  else if (detector === 'EMAIL') v = s.toLowerCase();
  return hasher.hash(v);
}

function applyStrategy(rule: CompiledRule, s: string, hasher: Hasher, detector?: string): string | null {
  switch (rule.strategy) {
    case 'null': return null;
    case 'redact': return rule.token;
    case 'partial': return partialMask(s, rule.keepLast);
    case 'hash': return hashValue(s, hasher, detector);
  }
}

/** Whether position `at` of a JSON text is inside a string. */
function inJsonString(text: string, at: number): boolean {
  let inside = false;
  for (let i = 0; i < at; i++) {
    const c = text.charCodeAt(i);
    if (c === 92 && inside) { i++; continue; }
    if (c === 34) inside = !inside;
  }
  return inside;
}

function jsonEscapeInner(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}

interface TextResult {
  value: string | null;
  findings: Finding[];
}

/** Detector pass over one text (`facts`: textFacts of its UTF-8 bytes); undefined when nothing was found. */
function scanText(text: string, scan: NonNullable<ColumnPlan['scan']>, json: boolean, hasher: Hasher, facts?: TextFacts): TextResult | undefined {
  const findings = findAll(text, scan.detectors, facts);
  if (findings.length === 0) return undefined;
  let out = '';
  let last = 0;
  for (const f of findings) {
    const rule = scan.ruleOf.get(f.detector)!;
    const masked = applyStrategy(rule, text.slice(f.start, f.end), hasher, f.detector);
    if (masked === null) return { value: null, findings };
    out += text.slice(last, f.start);
    out += json ? (inJsonString(text, f.start) ? jsonEscapeInner(masked) : JSON.stringify(masked)) : masked;
    last = f.end;
  }
  return { value: out + text.slice(last), findings };
}

function wholeValue(rule: CompiledRule, text: string, json: boolean, hasher: Hasher): string | null {
  if (!json) return applyStrategy(rule, text, hasher);
  let inner = text;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed === 'string') inner = parsed;
  } catch {
    // not valid JSON text: mask it as it is
  }
  const masked = applyStrategy(rule, inner, hasher);
  return masked === null ? null : JSON.stringify(masked);
}

// ---- binary arrays (https://www.postgresql.org/docs/current/arrays.html; array_send) ----

function maskBinaryArray(buf: Buffer, maskElement: (b: Buffer) => Buffer | null | undefined): Buffer | undefined {
  if (buf.length < 12) return undefined;
  const ndim = buf.readInt32BE(0);
  if (ndim < 0 || ndim > 6) throw new MaskingError('malformed binary array');
  let off = 12 + ndim * 8;
  let count = 1;
  for (let i = 0; i < ndim; i++) count *= buf.readInt32BE(12 + i * 8);
  if (ndim === 0) count = 0;
  const parts: Buffer[] = [buf.subarray(0, off)];
  let changed = false;
  let hasNull = buf.readInt32BE(4) !== 0;
  for (let i = 0; i < count; i++) {
    if (off + 4 > buf.length) throw new MaskingError('malformed binary array');
    const len = buf.readInt32BE(off);
    if (len < 0) { parts.push(buf.subarray(off, off + 4)); off += 4; continue; }
    if (off + 4 + len > buf.length) throw new MaskingError('malformed binary array');
    const el = buf.subarray(off + 4, off + 4 + len);
    const masked = maskElement(el);
    off += 4 + len;
    if (masked === undefined) { parts.push(buf.subarray(off - 4 - len, off)); continue; }
    changed = true;
    const hdr = Buffer.alloc(4);
    if (masked === null) { hdr.writeInt32BE(-1); parts.push(hdr); hasNull = true; continue; }
    hdr.writeInt32BE(masked.length);
    parts.push(hdr, masked);
  }
  if (!changed) return undefined;
  const out = Buffer.concat(parts);
  if (hasNull) out.writeInt32BE(1, 4);
  return out;
}

// How maskDataRow treats a column, decided once per plan. The value-independent strategies (null,
// redact) and the ones with a byte-level fast path (partial, hash of plain text) skip the generic
// path; JSON columns under a rule and binary jsonb/arrays take it (maskBuffer on a view of the value).
const RUN_GENERIC = 0;
const RUN_SCAN = 1;
const RUN_NULL = 2;
const RUN_REDACT = 3;
const RUN_PARTIAL = 4;
const RUN_HASH = 5;

interface ColumnRun {
  c: ColumnPlan;
  index: number;
  run: number;
  /** RUN_REDACT: the bytes every value becomes */
  token: Buffer | null;
  /** RUN_SCAN: the column's detectors */
  detectors: Detector[];
}

function columnRun(c: ColumnPlan): ColumnRun {
  const r: ColumnRun = { c, index: c.index, run: RUN_GENERIC, token: null, detectors: c.scan?.detectors ?? [] };
  if (c.codec !== 'text') return r;
  if (!c.rule) {
    r.run = RUN_SCAN;
    return r;
  }
  // wholeValue: null and redact do not depend on the value (a JSON column gets the token as a JSON string)
  if (c.rule.strategy === 'null') r.run = RUN_NULL;
  else if (c.rule.strategy === 'redact') {
    r.run = RUN_REDACT;
    r.token = Buffer.from(c.json ? JSON.stringify(c.rule.token) : c.rule.token, 'utf8');
  } else if (!c.json) r.run = c.rule.strategy === 'partial' ? RUN_PARTIAL : RUN_HASH;
  return r;
}

/**
 * partialMask of the UTF-8 text in bytes[start, end), written straight into `out` as value i, when
 * the text is ASCII with no '@' (then partialMask is partialAscii: one character per byte, no email
 * form). false: not that case, nothing written.
 */
function partialAsciiBytes(bytes: Uint8Array, start: number, end: number, keepLast: number, out: RowOutput, i: number): boolean {
  let alnum = 0;
  for (let p = start; p < end; p++) {
    const k = ASCII_KIND[bytes[p]];
    if (k === 2) return false;
    alnum += k;
  }
  // from the end: the last `keep` letters and digits stay, the ones before become '*'
  let keep = alnum > keepLast ? keepLast : 0;
  const at = out.reserve(i, end - start) - start;
  const buf = out.buf;
  for (let p = end - 1; p >= start; p--) {
    const b = bytes[p];
    if (ASCII_KIND[b] === 0) buf[at + p] = b;
    else if (keep > 0) { buf[at + p] = b; keep--; }
    else buf[at + p] = 42;
  }
  return true;
}

/** Per byte, for partialAsciiBytes: 1 an ASCII letter or digit (isAlnumCode), 2 not ASCII or '@', 0 the rest. */
const ASCII_KIND = new Uint8Array(256);
for (let b = 0; b < 256; b++) ASCII_KIND[b] = b > 127 || b === 64 ? 2 : isAlnumCode(b) ? 1 : 0;

/** Whether bytes[start, end) are all ASCII. */
function asciiBytes(bytes: Uint8Array, start: number, end: number): boolean {
  for (let p = start; p < end; p++) if (bytes[p] > 127) return false;
  return true;
}

class Plan implements MaskingPlan {
  readonly kind = 'plan' as const;
  readonly maskedColumns: string[];
  private masked = 0;
  /** values masked per rule id (ruleNames[id]) */
  private readonly counts: number[];
  private readonly runs: ColumnRun[];

  constructor(
    private readonly columns: ColumnPlan[],
    /** every column of the result, masked or not, in order */
    private readonly names: readonly string[],
    private readonly hasher: Hasher,
    private readonly ruleNames: string[],
  ) {
    this.maskedColumns = columns.map((c) => c.field.name);
    this.counts = ruleNames.map(() => 0);
    this.runs = columns.map(columnRun);
  }

  stats() {
    const byRule: Record<string, number> = {};
    this.counts.forEach((n, id) => { if (n > 0) byRule[this.ruleNames[id]] = n; });
    return { values: this.masked, byRule };
  }

  get maskedValues(): number {
    return this.masked;
  }

  private count(rule: CompiledRule): void {
    this.counts[rule.id]++;
  }

  /** Masks one text; undefined = unchanged, null = SQL NULL. */
  private maskString(c: ColumnPlan, text: string, json: boolean, facts?: TextFacts): string | null | undefined {
    if (c.rule) {
      this.count(c.rule);
      return wholeValue(c.rule, text, json, this.hasher);
    }
    const r = scanText(text, c.scan!, json, this.hasher, facts);
    if (!r) return undefined;
    if (r.findings.length === 1) this.count(c.scan!.ruleOf.get(r.findings[0].detector)!);
    else {
      // each rule once per value
      const ids = new Set(r.findings.map((f) => c.scan!.ruleOf.get(f.detector)!.id));
      for (const id of ids) this.counts[id]++;
    }
    return r.value;
  }

  /**
   * Masks the UTF-8 text in bytes[start..]. A scanned column looks at the bytes first (textFacts):
   * when no detector can match, the value is left as it is without ever being decoded.
   */
  private maskBytes(c: ColumnPlan, bytes: Buffer, start: number, json: boolean): string | null | undefined {
    if (c.rule) return this.maskString(c, bytes.toString('utf8', start), json);
    const facts = textFacts(bytes, start, bytes.length);
    if (!anyMayMatch(c.scan!.detectors, facts)) return undefined;
    // ASCII decodes the same as latin1, which skips UTF-8 validation
    const text = facts.flags & FACT.NON_ASCII ? bytes.toString('utf8', start) : bytes.toString('latin1', start);
    return this.maskString(c, text, json, facts);
  }

  private maskBuffer(c: ColumnPlan, v: Buffer): Buffer | string | null | undefined {
    switch (c.codec) {
      case 'text':
        return this.maskBytes(c, v, 0, c.json);
      case 'jsonb-binary': {
        if (v.length === 0 || v[0] !== 1) throw new MaskingError('unsupported jsonb binary version');
        const s = this.maskBytes(c, v, 1, true);
        return s === undefined ? undefined : s === null ? null : Buffer.concat([v.subarray(0, 1), Buffer.from(s, 'utf8')]);
      }
      case 'text-array-binary': {
        const elementJson = c.field.typeOid === 199 || c.field.typeOid === 3807;
        const jsonbElements = c.field.typeOid === 3807;
        return maskBinaryArray(v, (el) => {
          const s = this.maskBytes(c, el, jsonbElements ? 1 : 0, elementJson);
          if (s === undefined || s === null) return s;
          const body = Buffer.from(s, 'utf8');
          return jsonbElements ? Buffer.concat([el.subarray(0, 1), body]) : body;
        });
      }
    }
  }

  maskDataRow(row: RowValues, out: RowOutput): number {
    const runs = this.runs;
    const bytes = row.payload;
    let changed = 0;
    for (let k = 0; k < runs.length; k++) {
      const r = runs[k];
      const i = r.index;
      if (i >= row.count) continue; // a row shorter than its layout: as maskRow, the missing values are not there to mask
      const len = row.lengths[i];
      if (len < 0) continue;
      const start = row.starts[i];
      const end = start + len;
      switch (r.run) {
        case RUN_SCAN: {
          // the bytes first: a value no detector can match is never decoded
          const facts = textFacts(bytes, start, end);
          if (!anyMayMatch(r.detectors, facts)) continue;
          const text = facts.flags & FACT.NON_ASCII ? bytes.toString('utf8', start, end) : bytes.toString('latin1', start, end);
          const m = this.maskString(r.c, text, r.c.json, facts);
          if (m === undefined) continue;
          if (m === null) out.setNull(i);
          else out.setString(i, m);
          break;
        }
        case RUN_NULL:
          this.count(r.c.rule!);
          out.setNull(i);
          break;
        case RUN_REDACT:
          this.count(r.c.rule!);
          out.setBytes(i, r.token!, 0, r.token!.length);
          break;
        case RUN_PARTIAL:
          this.count(r.c.rule!);
          if (!partialAsciiBytes(bytes, start, end, r.c.rule!.keepLast, out, i)) out.setString(i, partialMask(bytes.toString('utf8', start, end), r.c.rule!.keepLast));
          break;
        case RUN_HASH:
          this.count(r.c.rule!);
          // ASCII bytes are the UTF-8 of their text; anything else goes through decoding (invalid
          // UTF-8 becomes U+FFFD, as in maskRow)
          if (asciiBytes(bytes, start, end)) this.hasher.hashInto(bytes, start, end, out, i);
          else out.setString(i, this.hasher.hash(bytes.toString('utf8', start, end)));
          break;
        default: {
          const m = this.maskBuffer(r.c, bytes.subarray(start, end));
          if (m === undefined) continue;
          if (m === null) out.setNull(i);
          else if (typeof m === 'string') out.setString(i, m);
          else out.setBytes(i, m, 0, m.length);
        }
      }
      changed++;
    }
    this.masked += changed;
    return changed;
  }

  maskRow(values: (Buffer | null)[]): { values: (Buffer | string | null)[]; changed: number } {
    let out: (Buffer | string | null)[] | null = null;
    let changed = 0;
    for (const c of this.columns) {
      const v = values[c.index];
      if (v === null || v === undefined) continue;
      const m = this.maskBuffer(c, v);
      if (m === undefined) continue;
      out ??= values.slice();
      out[c.index] = m;
      changed++;
    }
    this.masked += changed;
    return out ? { values: out, changed } : { values, changed: 0 };
  }

  maskCopyLine(line: Buffer): Buffer {
    let end = line.length;
    const newline = end > 0 && line[end - 1] === 10;
    if (newline) end--;
    if (end === 2 && line[0] === 92 && line[1] === 46) return line; // \. end-of-data marker
    const fields: Buffer[] = [];
    let start = 0;
    for (let i = 0; i < end; i++) {
      if (line[i] === 9) { fields.push(line.subarray(start, i)); start = i + 1; }
    }
    fields.push(line.subarray(start, end));
    if (fields.length !== this.names.length) {
      throw new MaskingError(`COPY line has ${fields.length} columns, the masking plan expects ${this.names.length}`);
    }
    let changed = false;
    for (const c of this.columns) {
      const f = fields[c.index];
      if (f.length === 2 && f[0] === 92 && f[1] === 78) continue; // \N
      const s = this.maskBytes(c, copyDecode(f), 0, c.json);
      if (s === undefined) continue;
      fields[c.index] = Buffer.from(s === null ? '\\N' : copyEncode(s), 'utf8');
      this.masked++;
      changed = true;
    }
    if (!changed) return line;
    const parts: Buffer[] = [];
    fields.forEach((f, i) => { if (i) parts.push(TAB); parts.push(f); });
    if (newline) parts.push(NEWLINE);
    return Buffer.concat(parts);
  }

  copyLineMasker(format: CopyFormat): (line: Buffer) => Buffer {
    if (isDefaultCopyFormat(format)) return (line) => this.maskCopyLine(line);
    const codec = new CopyLineCodec(format, this.names);
    let header = format.header;
    return (line) => {
      if (!header) return this.maskCopyFields(codec, line);
      // The server sends the header as the first message. Checked, not assumed: were it a data row
      // (a HEADER the server read differently), it would pass unmasked.
      header = false;
      const { fields } = codec.split(line);
      if (fields.length !== this.names.length || fields.some((f, i) => codec.decode(f).toString('utf8') !== this.names[i])) {
        throw new MaskingError('the first line of a COPY with HEADER is not the header of its columns');
      }
      return line;
    };
  }

  private maskCopyFields(codec: CopyLineCodec, line: Buffer): Buffer {
    // \. alone is the old end-of-data marker, not a row (a value \. is sent as \\.), as in maskCopyLine
    if (codec.format.format === 'text' && line.length <= 3 && line[0] === 92 && line[1] === 46 && (line.length === 2 || line[2] === 10)) return line;
    const split = codec.split(line);
    const fields = split.fields;
    if (fields.length !== this.names.length) {
      throw new MaskingError(`COPY line has ${fields.length} columns, the masking plan expects ${this.names.length}`);
    }
    let changed = false;
    for (const c of this.columns) {
      const f = fields[c.index];
      // A text-format NULL string is not escaped by the server: a value equal to it reads as NULL
      // here as it would in COPY FROM (see the policy README, "COPY").
      if (codec.isNull(f)) continue;
      const s = this.maskBytes(c, codec.decode(f), 0, c.json);
      if (s === undefined) continue;
      fields[c.index] = s === null ? codec.nullField : codec.encode(s, c.index);
      this.masked++;
      changed = true;
    }
    return changed ? codec.join(split) : line;
  }
}

const TAB = Buffer.from('\t');
const NEWLINE = Buffer.from('\n');

/**
 * The masking plan of one result set: null when nothing in it can ever change, a refusal when a
 * covered column arrives in a binary format its rule cannot be applied to.
 */
export function createMaskingPlan(doc: PolicyDocument, fields: ResultField[], opts: MaskingOptions): MaskingPlan | MaskingRefusal | null {
  const draft = draftPlan(doc, fields);
  if (draft.refusal) return { kind: 'refuse', reason: draft.refusal };
  if (draft.columns.length === 0) return null;
  return new Plan(draft.columns, fields.map((f) => f.name), hasherFor(opts.hmacKey), draft.ruleNames);
}

/** JSON-able description of the plan: which rule covers which column, which detectors run where. */
export function explainMaskingPlan(doc: PolicyDocument, fields: ResultField[]): unknown {
  const draft = draftPlan(doc, fields);
  return { refused: draft.refusal, columns: draft.explain };
}

/** Runs every detector rule of the policy over one text (the API's dry run). A `null` strategy hit yields ''. */
export function maskText(value: string, doc: PolicyDocument, opts: MaskingOptions): { value: string; findings: { detector: string; rule: string }[] } {
  const all = compileMasking(doc).all;
  if (!all) return { value, findings: [] };
  const r = scanText(value, all, false, hasherFor(opts.hmacKey));
  if (!r) return { value, findings: [] };
  return {
    value: r.value ?? '',
    findings: r.findings.map((f) => ({ detector: f.detector, rule: all.ruleOf.get(f.detector)!.name })),
  };
}
