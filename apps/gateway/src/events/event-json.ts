import { canonicalJsonFast } from '@portcullis/protocol';
import type { DecisionEventData, QueryEventData, ResultEventData } from '../postgres/relay-machine.js';

/**
 * The canonical JSON (libs/protocol canonicalJson: keys sorted, undefined members dropped) of the
 * data of the three events every statement makes, written out member by member in sorted order.
 * These run three times per simple-protocol statement; the generic serialiser walks and sorts the
 * keys of each object and recurses into every value. event-json.spec.ts holds each equal to
 * canonicalJson for every member combination.
 */

const J = JSON.stringify;

type QueryData = QueryEventData;
type DecisionData = DecisionEventData;

/** portal < protocol < sql < statement */
export function queryJson(d: QueryData): string {
  let out = '{';
  if (d.portal !== undefined) out += `"portal":${J(d.portal)},`;
  out += `"protocol":${J(d.protocol)},"sql":${J(d.sql)}`;
  if (d.statement !== undefined) out += `,"statement":${J(d.statement)}`;
  return `${out}}`;
}

/** action < cached < kinds < policyVersion < reason < rule */
export function decisionJson(d: DecisionData): string {
  let out = `{"action":${J(d.action)}`;
  if (d.cached !== undefined) out += d.cached ? ',"cached":true' : ',"cached":false';
  if (d.kinds !== undefined) {
    out += ',"kinds":[';
    const k = d.kinds;
    for (let i = 0; i < k.length; i++) out += (i ? ',' : '') + (k[i] === undefined ? 'null' : J(k[i]));
    out += ']';
  }
  if (d.policyVersion !== undefined) out += `,"policyVersion":${J(d.policyVersion)}`;
  if (d.reason !== undefined) out += `,"reason":${d.reason === null ? 'null' : J(d.reason)}`;
  if (d.rule !== undefined) out += `,"rule":${d.rule === null ? 'null' : J(d.rule)}`;
  return `${out}}`;
}

const num = (n: number) => (Number.isFinite(n) ? J(n) : 'null');

/** durationMs < error < masking < returned < rows < tag */
export function resultJson(d: ResultEventData): string {
  let out = `{"durationMs":${num(d.durationMs)}`;
  if (d.error !== undefined) out += `,"error":${canonicalJsonFast(d.error)}`;
  if (d.masking !== undefined) out += `,"masking":${canonicalJsonFast(d.masking)}`;
  if (d.returned !== undefined) out += `,"returned":${canonicalJsonFast(d.returned)}`;
  out += `,"rows":${num(d.rows)}`;
  if (d.tag !== undefined) out += `,"tag":${J(d.tag)}`;
  return `${out}}`;
}

const optStr = (name: string, v: string | null | undefined) => (v === undefined ? '' : `,"${name}":${v === null ? 'null' : J(v)}`);

/**
 * The `statement` event's data: the members of the query, decision and result data in one object
 * (no name is in two of them), in sorted order: action < cached < durationMs < error < kinds <
 * masking < policyVersion < portal < protocol < reason < returned < rows < rule < sql < statement < tag.
 */
export function statementJson(q: QueryData, d: DecisionData, r: ResultEventData): string {
  let out = `{"action":${J(d.action)}`;
  if (d.cached !== undefined) out += d.cached ? ',"cached":true' : ',"cached":false';
  out += `,"durationMs":${num(r.durationMs)}`;
  if (r.error !== undefined) out += `,"error":${canonicalJsonFast(r.error)}`;
  if (d.kinds !== undefined) {
    out += ',"kinds":[';
    const k = d.kinds;
    for (let i = 0; i < k.length; i++) out += (i ? ',' : '') + (k[i] === undefined ? 'null' : J(k[i]));
    out += ']';
  }
  if (r.masking !== undefined) out += `,"masking":${canonicalJsonFast(r.masking)}`;
  if (d.policyVersion !== undefined) out += `,"policyVersion":${J(d.policyVersion)}`;
  out += optStr('portal', q.portal);
  out += `,"protocol":${J(q.protocol)}`;
  out += optStr('reason', d.reason);
  if (r.returned !== undefined) out += `,"returned":${canonicalJsonFast(r.returned)}`;
  out += `,"rows":${num(r.rows)}`;
  out += optStr('rule', d.rule);
  out += `,"sql":${J(q.sql)}`;
  out += optStr('statement', q.statement);
  out += optStr('tag', r.tag);
  return `${out}}`;
}
