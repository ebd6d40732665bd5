import { FIRST_NORMAL_OID, JSON_OIDS, JSONB_OID, TEXT_ARRAY_ELEMENT, TEXT_LIKE_OIDS } from '../pg-types.js';
import type { PolicyDocument } from '../policy-document.js';
import type { ResultField } from './masking.types.js';
import { compileMasking, detectorSet, ruleCovers, typeNameOf, type CompiledRule, type DetectorScan } from './rules.js';

/**
 * What a result set's columns get, decided once per plan from its RowDescription: masked whole by
 * the first column rule that covers it, scanned by content detectors, left alone, or a refusal (a
 * covered column in a binary format its rule cannot be applied to).
 */

export type Codec = 'text' | 'jsonb-binary' | 'text-array-binary';

export interface ColumnPlan {
  index: number;
  field: ResultField;
  codec: Codec;
  json: boolean;
  rule: CompiledRule | null;
  scan: DetectorScan | null;
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

export interface PlanDraft {
  columns: ColumnPlan[];
  refusal: string | null;
  explain: Record<string, unknown>[];
  ruleNames: string[];
}

export function draftPlan(doc: PolicyDocument, fields: ResultField[]): PlanDraft {
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
