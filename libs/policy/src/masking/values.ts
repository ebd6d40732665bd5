import { findAll, type Detector, type Finding, type TextFacts } from '../detectors.js';
import { MaskingError } from '../errors.js';
import type { PolicyDocument } from '../policy-document.js';
import { hasherFor, type Hasher } from './hash-cache.js';
import type { MaskingOptions } from './masking.types.js';
import { compileMasking, type CompiledRule, type DetectorScan } from './rules.js';
import { applyStrategy } from './strategies.js';

/**
 * One value under a rule or a detector scan: plain text, JSON text (stays valid JSON: whole-value
 * masks become JSON strings, replacements inside JSON strings are escaped) and binary arrays of
 * text or JSON elements.
 */

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
export function scanText(text: string, scan: DetectorScan, json: boolean, hasher: Hasher, facts?: TextFacts): TextResult | undefined {
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

export function wholeValue(rule: CompiledRule, text: string, json: boolean, hasher: Hasher): string | null {
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

export function maskBinaryArray(buf: Buffer, maskElement: (b: Buffer) => Buffer | null | undefined): Buffer | undefined {
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

/**
 * The detector rules of a policy as one text masker, for masking that is not about result columns
 * (terminal streams, stream-masker.ts): the detectors to run, and what each finding becomes. Null
 * when no masking rule uses detectors. The `null` strategy has no meaning in a text: it redacts.
 */
export function detectorTextMasker(doc: PolicyDocument, opts: MaskingOptions): {
  detectors: readonly Detector[];
  mask(detector: string, value: string): string;
  ruleOf(detector: string): string;
  /** the redact token of the first detector rule (for values no detector names, e.g. private keys) */
  token: string;
  rule: string;
} | null {
  const compiled = compileMasking(doc);
  const all = compiled.all;
  if (!all) return null;
  const hasher = hasherFor(opts.hmacKey);
  const first = compiled.detectorRules[0]!;
  return {
    detectors: all.detectors,
    mask: (detector, value) => {
      const rule = all.ruleOf.get(detector)!;
      return applyStrategy(rule, value, hasher, detector) ?? rule.token;
    },
    ruleOf: (detector) => all.ruleOf.get(detector)!.name,
    token: first.token,
    rule: first.name,
  };
}
