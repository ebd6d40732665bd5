import { BUILTIN_DETECTORS, type Detector } from '../detectors.js';
import { TYPE_NAMES, canonicalTypeName } from '../pg-types.js';
import type { MaskingRule, PolicyDocument } from '../policy-document.js';
import { splitQualifiedName } from '../qualified-name.js';
import type { ResultField } from './masking.types.js';

/**
 * Masking rules compiled once per policy document: column rules (by name, table.column or type)
 * and detector rules, each with a counter slot; which rule covers a result column.
 */

/** The detectors that scan one column (or one text), and the rule each detector belongs to. */
export interface DetectorScan {
  detectors: Detector[];
  ruleOf: Map<string, CompiledRule>;
}

const DEFAULT_TOKEN = '[REDACTED]';
const DEFAULT_KEEP_LAST = 4;

export interface CompiledRule {
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

export interface CompiledMasking {
  columnRules: CompiledRule[];
  detectorRules: CompiledRule[];
  /** rule names by id */
  ruleNames: string[];
  /** every detector of every detector rule, for maskText */
  all: { detectors: Detector[]; ruleOf: Map<string, CompiledRule> } | null;
}

const compiledCache = new WeakMap<PolicyDocument, CompiledMasking>();

export function compileMasking(doc: PolicyDocument): CompiledMasking {
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
      selectors: r.columns ? r.columns.map(splitQualifiedName) : null,
      types: r.types ? new Set(r.types.map(canonicalTypeName)) : null,
      detectors: r.detectors ? r.detectors.flatMap(detectorsNamed) : null,
    };
    (rule.detectors ? detectorRules : columnRules).push(rule);
  }
  const compiled: CompiledMasking = { columnRules, detectorRules, ruleNames, all: detectorSet(detectorRules) };
  compiledCache.set(doc, compiled);
  return compiled;
}

export function detectorSet(rules: CompiledRule[]): DetectorScan | null {
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

export function typeNameOf(oid: number): string {
  return TYPE_NAMES.get(oid) ?? `oid:${oid}`;
}

function selectorMatches(sel: string[], f: ResultField): boolean {
  const col = sel[sel.length - 1];
  if (f.name.toLowerCase() !== col && f.column?.toLowerCase() !== col) return false;
  if (sel.length === 1) return true;
  // table unknown (not resolved, or a computed column): match on the name alone — mask rather than leak
  if (!f.table) return true;
  const table = splitQualifiedName(f.table);
  if (sel.length === 2) return table[table.length - 1] === sel[0];
  return table.slice(-2).join('.') === sel.slice(-3, -1).join('.');
}

export function ruleCovers(r: CompiledRule, f: ResultField): boolean {
  if (r.selectors && r.selectors.some((s) => selectorMatches(s, f))) return true;
  if (r.types && (r.types.has(typeNameOf(f.typeOid)) || r.types.has(String(f.typeOid)))) return true;
  return false;
}
