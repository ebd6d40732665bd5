import { describe, expect, it } from 'vitest';
import { parsePolicyDocument } from '../policy-document.js';
import { evaluate, initPolicyEngine } from '../policy-engine.js';
import { evaluateKubeRequest, globMatches } from './kube-guardrails.js';
import { parseRequestInfo } from './request-info.js';

const doc = parsePolicyDocument({
  name: 'k8s',
  guardrails: [
    { name: 'no-namespace-or-node-delete', action: 'block', match: { kubernetes: { verbs: ['delete', 'deletecollection'], resources: ['namespaces', 'nodes'] } }, reason: 'ask the platform team' },
    { name: 'prod-changes', action: 'require_approval', match: { kubernetes: { verbs: ['delete', 'deletecollection', 'patch'], namespaces: ['prod-*'] } } },
    { name: 'no-exec-kube-system', action: 'block', match: { kubernetes: { resources: ['pods/exec', 'pods/attach'], namespaces: ['kube-system'] } } },
    { name: 'no-escalation', action: 'block', match: { kubernetes: { verbs: ['escalate', 'bind', 'impersonate'] } } },
    { name: 'no-crb-changes', action: 'block', match: { kubernetes: { verbs: ['create', 'update', 'patch', 'delete', 'deletecollection'], groups: ['rbac.authorization.k8s.io'], resources: ['clusterrolebindings'] } } },
    { name: 'no-debug-endpoints', action: 'block', match: { kubernetes: { nonResourceURLs: ['/debug/*'] } } },
    { name: 'sql', action: 'block', match: { statements: ['DROP'] } },
  ],
});

const B = 'block';
const R = 'require_approval';
const A = 'allow';
// [name, method, url, action, rule]
const rows: [string, string, string, string, string | null][] = [
  ['delete a namespace (also a prod one: block beats approval)', 'DELETE', '/api/v1/namespaces/prod-a', B, 'no-namespace-or-node-delete'],
  ['delete a node', 'DELETE', '/api/v1/nodes/n1', B, 'no-namespace-or-node-delete'],
  ['deletecollection of nodes', 'DELETE', '/api/v1/nodes', B, 'no-namespace-or-node-delete'],
  ['finalize a namespace is no delete', 'PUT', '/api/v1/namespaces/x/finalize', A, null],
  ['delete a deployment in prod-a', 'DELETE', '/apis/apps/v1/namespaces/prod-a/deployments/web', R, 'prod-changes'],
  ['deletecollection of pods in prod-b', 'DELETE', '/api/v1/namespaces/prod-b/pods', R, 'prod-changes'],
  ['patch in prod (server-side apply)', 'PATCH', '/api/v1/namespaces/prod-a/configmaps/cm1?fieldManager=kubectl', R, 'prod-changes'],
  ['delete in staging', 'DELETE', '/api/v1/namespaces/staging/pods/web', A, null],
  ['production is not prod-*', 'DELETE', '/api/v1/namespaces/production/pods/web', A, null],
  ['exec in kube-system', 'POST', '/api/v1/namespaces/kube-system/pods/etcd/exec?command=sh', B, 'no-exec-kube-system'],
  ['exec over GET (WebSocket) in kube-system', 'GET', '/api/v1/namespaces/kube-system/pods/etcd/exec?command=sh', B, 'no-exec-kube-system'],
  ['attach in kube-system', 'POST', '/api/v1/namespaces/kube-system/pods/etcd/attach', B, 'no-exec-kube-system'],
  ['exec elsewhere', 'POST', '/api/v1/namespaces/default/pods/web/exec?command=id', A, null],
  ['get a pod in kube-system', 'GET', '/api/v1/namespaces/kube-system/pods/etcd', A, null],
  ['creating a clusterrolebinding is bind and blocked', 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', B, 'no-escalation'],
  ['creating a rolebinding is bind', 'POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/dev/rolebindings', B, 'no-escalation'],
  ['patching a clusterrole is escalate', 'PATCH', '/apis/rbac.authorization.k8s.io/v1/clusterroles/admin', B, 'no-escalation'],
  ['deleting a clusterrolebinding is a change', 'DELETE', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/x', B, 'no-crb-changes'],
  ['reading RBAC is fine', 'GET', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', A, null],
  ['a look-alike group is not RBAC', 'POST', '/apis/rbac.authorization.k8s.io.evil.com/v1/clusterrolebindings', A, null],
  ['non-resource rule', 'GET', '/debug/pprof/profile', B, 'no-debug-endpoints'],
  ['non-resource rules never match resources', 'GET', '/api/v1/namespaces/debug/pods', A, null],
  ['discovery', 'GET', '/apis?timeout=32s', A, null],
];

describe('evaluateKubeRequest', () => {
  it.each(rows)('%s', (_n, method, url, action, rule) => {
    const d = evaluateKubeRequest(parseRequestInfo(method, url), doc);
    expect({ action: d.action, rule: d.rule }).toEqual({ action, rule });
  });

  it('names the request, the rule and the admin reason', () => {
    const d = evaluateKubeRequest(parseRequestInfo('DELETE', '/api/v1/namespaces/prod-a'), doc);
    expect(d.reason).toBe('delete namespaces prod-a is blocked by guardrail no-namespace-or-node-delete: ask the platform team');
  });

  it('resources follow RBAC: pods is not pods/exec, * is everything, pods/* every subresource', () => {
    const one = (resources: string[], url: string) =>
      evaluateKubeRequest(parseRequestInfo('POST', url), parsePolicyDocument({ name: 'x', guardrails: [{ name: 'r', action: 'block', match: { kubernetes: { resources } } }] })).action;
    expect(one(['pods'], '/api/v1/namespaces/d/pods/w/exec')).toBe(A);
    expect(one(['pods'], '/api/v1/namespaces/d/pods')).toBe(B);
    expect(one(['*'], '/api/v1/namespaces/d/pods/w/exec')).toBe(B);
    expect(one(['pods/*'], '/api/v1/namespaces/d/pods/w/exec')).toBe(B);
    expect(one(['pods/*'], '/api/v1/namespaces/d/pods')).toBe(A);
  });

  it('core group is "" or core', () => {
    const d = parsePolicyDocument({ name: 'x', guardrails: [{ name: 'r', action: 'block', match: { kubernetes: { groups: ['core'], resources: ['secrets'] } } }] });
    expect(evaluateKubeRequest(parseRequestInfo('GET', '/api/v1/secrets'), d).action).toBe(B);
    expect(evaluateKubeRequest(parseRequestInfo('GET', '/apis/example.com/v1/secrets'), d).action).toBe(A);
  });

  it('globs: * and ? only, everything else literal', () => {
    expect(globMatches('prod-*', 'prod-a')).toBe(true);
    expect(globMatches('prod-*', 'prod')).toBe(false);
    expect(globMatches('prod-?', 'prod-ab')).toBe(false);
    expect(globMatches('a.b', 'axb')).toBe(false);
    expect(globMatches('(x)', '(x)')).toBe(true);
  });

  it('Kubernetes-only guardrails never match SQL', async () => {
    await initPolicyEngine();
    expect(evaluate('SELECT 1', doc).action).toBe('allow');
    expect(evaluate('DROP TABLE t', doc).rule).toBe('sql');
  });

  it('validates the match', () => {
    expect(() => parsePolicyDocument({ name: 'x', guardrails: [{ name: 'r', action: 'block', match: { kubernetes: {} } }] })).toThrow(/at least one condition/);
    expect(() => parsePolicyDocument({ name: 'x', guardrails: [{ name: 'r', action: 'block', match: { kubernetes: { verb: ['delete'] } } }] })).toThrow();
    expect(() => parsePolicyDocument({ name: 'x', guardrails: [{ name: 'r', action: 'block', match: { kubernetes: { nonResourceURLs: ['/x'], resources: ['pods'] } } }] })).toThrow(/nonResourceURLs/);
    expect(parsePolicyDocument({ name: 'x', kubernetes: { secrets: 'allow' } }).kubernetes).toEqual({ secrets: 'allow' });
  });
});
