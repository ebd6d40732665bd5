import { z } from 'zod';
import type { Action, PolicyDocument } from '../policy-document.js';
import { describeRequest, type KubeRequestInfo } from './request-info.js';

/**
 * Kubernetes guardrails: `match: { kubernetes: { verbs, groups, resources, subresources, namespaces,
 * names, nonResourceURLs } }`, each a list of globs (`*` any run of characters, `?` one). Every list
 * given must match; a list left out matches anything. Semantics follow RBAC where RBAC has them:
 *
 * - `resources: ["pods"]` is the resource without a subresource; `pods/exec` (or `pods/*`) names a
 *   subresource; `*` is every resource and subresource. `subresources` narrows further.
 * - `groups`: `""` or `core` is the core group.
 * - `namespaces` match the request's namespace; a namespace object itself (`/api/v1/namespaces/x`)
 *   is in namespace `x`, as kube-apiserver says. Cluster-scoped requests have namespace `""`.
 * - Resource attributes only ever match resource requests; `nonResourceURLs` only non-resource ones
 *   (`/version`, `/healthz*`); a rule with only `verbs` matches both.
 * - Verbs are the request's verb and those it implies for RBAC objects: a write to `roles` or
 *   `clusterroles` is also `escalate`, a write to `rolebindings` or `clusterrolebindings` also `bind`
 *   (what the API server checks them for), so `verbs: ["escalate", "bind"]` closes privilege
 *   escalation however the write is spelt.
 */
const globList = z.array(z.string().max(253)).min(1, 'must list at least one pattern');

export const kubernetesMatchSchema = z
  .strictObject({
    verbs: globList.optional(),
    groups: globList.optional(),
    resources: globList.optional(),
    subresources: globList.optional(),
    namespaces: globList.optional(),
    names: globList.optional(),
    nonResourceURLs: globList.optional(),
  })
  .refine((m) => Object.values(m).some((v) => v !== undefined), { message: 'kubernetes match needs at least one condition' })
  .refine((m) => !(m.nonResourceURLs && (m.groups || m.resources || m.subresources || m.namespaces || m.names)), {
    message: 'nonResourceURLs cannot be combined with resource conditions (groups, resources, subresources, namespaces, names)',
  });
export type KubernetesMatch = z.infer<typeof kubernetesMatchSchema>;

/** Top-level `kubernetes` settings of a policy document. */
export const kubernetesSettingsSchema = z.strictObject({
  /**
   * `redact` (default): Secret `data`/`stringData` values (and the copy kubectl keeps in the
   * last-applied annotation) never leave the gateway; `allow` passes them.
   */
  secrets: z.enum(['redact', 'allow']).default('redact'),
});
export type KubernetesSettings = z.infer<typeof kubernetesSettingsSchema>;

export interface KubeDecision {
  action: Action;
  /** the guardrail that decided; null when allowed */
  rule: string | null;
  reason: string;
}

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
const RBAC_GROUP = 'rbac.authorization.k8s.io';

/** The verbs a request counts as: its own, plus escalate/bind for writes to RBAC roles and bindings. */
export function impliedVerbs(info: KubeRequestInfo): string[] {
  const verbs = [info.verb];
  if (info.isResourceRequest && info.apiGroup === RBAC_GROUP && WRITE_VERBS.has(info.verb) && info.verb !== 'delete' && info.verb !== 'deletecollection') {
    if (info.resource === 'roles' || info.resource === 'clusterroles') verbs.push('escalate');
    if (info.resource === 'rolebindings' || info.resource === 'clusterrolebindings') verbs.push('bind');
  }
  return verbs;
}

const globCache = new Map<string, RegExp>();

/** `*` any run of characters (also `/`), `?` one character, everything else literal. */
export function globMatches(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  let re = globCache.get(pattern);
  if (!re) {
    const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[\\s\\S]*').replace(/\?/g, '[\\s\\S]');
    re = new RegExp(`^${body}$`);
    if (globCache.size > 10_000) globCache.clear();
    globCache.set(pattern, re);
  }
  return re.test(value);
}

const anyGlob = (patterns: readonly string[], value: string): boolean => patterns.some((p) => globMatches(p, value));

function resourceMatches(patterns: readonly string[], info: KubeRequestInfo): boolean {
  const full = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
  return patterns.some((p) => (p.includes('/') || p === '*' ? globMatches(p, full) : info.subresource === '' && globMatches(p, info.resource)));
}

/** Whether one `match.kubernetes` covers the request. */
export function kubernetesMatches(m: KubernetesMatch, info: KubeRequestInfo): boolean {
  if (m.verbs && !impliedVerbs(info).some((v) => anyGlob(m.verbs!, v))) return false;
  const resourceConditions = m.groups || m.resources || m.subresources || m.namespaces || m.names;
  if (!info.isResourceRequest) {
    if (resourceConditions) return false;
    return m.nonResourceURLs ? anyGlob(m.nonResourceURLs, info.path) : true;
  }
  if (m.nonResourceURLs) return false;
  if (m.groups && !m.groups.some((g) => globMatches(g === 'core' ? '' : g, info.apiGroup))) return false;
  if (m.resources && !resourceMatches(m.resources, info)) return false;
  if (m.subresources && !anyGlob(m.subresources, info.subresource)) return false;
  if (m.namespaces && !anyGlob(m.namespaces, info.namespace)) return false;
  if (m.names && !anyGlob(m.names, info.name)) return false;
  return true;
}

const SEVERITY: Record<Action, number> = { allow: 0, require_approval: 1, block: 2 };

/**
 * Decides one Kubernetes request: the most restrictive matching guardrail wins, ties go to the first.
 * Pure; never throws for a valid document.
 */
export function evaluateKubeRequest(info: KubeRequestInfo, doc: PolicyDocument): KubeDecision {
  let best: { action: Action; name: string; reason: string | undefined } | null = null;
  for (const g of doc.guardrails ?? []) {
    const m = (g.match as { kubernetes?: KubernetesMatch }).kubernetes;
    if (!m || !kubernetesMatches(m, info)) continue;
    if (!best || SEVERITY[g.action] > SEVERITY[best.action]) best = { action: g.action, name: g.name, reason: g.reason };
  }
  if (!best || best.action === 'allow') return { action: 'allow', rule: best?.name ?? null, reason: best ? `allowed by guardrail ${best.name}` : 'no guardrail matched' };
  const what = describeRequest(info);
  const said = best.action === 'block' ? `${what} is blocked by guardrail ${best.name}` : `${what} requires approval by guardrail ${best.name}`;
  return { action: best.action, rule: best.name, reason: best.reason ? `${said}: ${best.reason}` : said };
}

/** The document's Kubernetes settings with defaults. */
export function kubernetesSettings(doc: PolicyDocument): KubernetesSettings {
  return (doc as { kubernetes?: KubernetesSettings }).kubernetes ?? { secrets: 'redact' };
}
