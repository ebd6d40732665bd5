import { describe, expect, it } from 'vitest';
import { KubeRequestError, describeRequest, parseRequestInfo } from './request-info.js';

// [name, method, URL as kubectl v1.32 sent it (captured with -v=6 against the real API server), expected]
type Row = [string, string, string, Partial<ReturnType<typeof parseRequestInfo>>];
const rows: Row[] = [
  // the tricky ones first
  ['namespace object is in its own namespace (kubectl delete ns prod-a)', 'DELETE', '/api/v1/namespaces/prod-a', { verb: 'delete', resource: 'namespaces', name: 'prod-a', namespace: 'prod-a', subresource: '' }],
  ['namespace finalize is a subresource of the namespace', 'PUT', '/api/v1/namespaces/prod-a/finalize', { verb: 'update', resource: 'namespaces', name: 'prod-a', namespace: 'prod-a', subresource: 'finalize' }],
  ['namespace status', 'GET', '/api/v1/namespaces/prod-a/status', { verb: 'get', resource: 'namespaces', name: 'prod-a', subresource: 'status' }],
  ['create a namespace (kubectl create ns)', 'POST', '/api/v1/namespaces?fieldManager=kubectl-create&fieldValidation=Strict', { verb: 'create', resource: 'namespaces', name: '', namespace: '' }],
  ['list without a name is list (kubectl get ns)', 'GET', '/api/v1/namespaces?limit=500', { verb: 'list', resource: 'namespaces', namespace: '' }],
  ['watch=true (kubectl get -w)', 'GET', '/api/v1/namespaces/default/pods?resourceVersion=412&watch=true', { verb: 'watch', resource: 'pods', namespace: 'default' }],
  ['watch=1 is a watch', 'GET', '/api/v1/pods?watch=1', { verb: 'watch' }],
  ['watch= (empty) is a watch, as in Go', 'GET', '/api/v1/pods?watch=', { verb: 'watch' }],
  ['watch=false is a list', 'GET', '/api/v1/pods?watch=false', { verb: 'list' }],
  ['watch=0 is a list', 'GET', '/api/v1/pods?watch=0', { verb: 'list' }],
  ['first watch value counts', 'GET', '/api/v1/pods?watch=false&watch=true', { verb: 'list' }],
  ['deprecated /watch/ path form', 'GET', '/api/v1/watch/namespaces/default/pods', { verb: 'watch', resource: 'pods', namespace: 'default' }],
  ['delete without a name is deletecollection', 'DELETE', '/api/v1/namespaces/default/pods', { verb: 'deletecollection', resource: 'pods', namespace: 'default' }],
  ['field selector on metadata.name names the object', 'GET', '/api/v1/configmaps?fieldSelector=metadata.name%3Dkube-root-ca.crt&limit=500', { verb: 'list', resource: 'configmaps', name: 'kube-root-ca.crt' }],
  ['field selector with == names it too', 'GET', '/api/v1/namespaces/x/secrets?fieldSelector=metadata.name%3D%3Ddb', { verb: 'list', name: 'db' }],
  ['exec with its command (kubectl exec web -- sh -c ls)', 'POST', '/api/v1/namespaces/kube-system/pods/web/exec?command=sh&command=-c&command=ls&container=c&stderr=true&stdout=true', { verb: 'create', resource: 'pods', subresource: 'exec', name: 'web', namespace: 'kube-system', command: ['sh', '-c', 'ls'], container: 'c', stdin: false, tty: false }],
  ['exec -it', 'POST', '/api/v1/namespaces/default/pods/web/exec?command=sh&container=c&stdin=true&stdout=true&tty=true', { subresource: 'exec', stdin: true, tty: true, command: ['sh'] }],
  ['exec over GET (WebSocket) is get on pods/exec', 'GET', '/api/v1/namespaces/default/pods/web/exec?command=id&stdout=true', { verb: 'get', subresource: 'exec', command: ['id'] }],
  ['attach', 'POST', '/api/v1/namespaces/default/pods/web/attach?container=c&stdin=true&stdout=true&tty=true', { verb: 'create', subresource: 'attach', stdin: true, tty: true }],
  ['logs -f', 'GET', '/api/v1/namespaces/default/pods/web/log?container=c&follow=true', { verb: 'get', resource: 'pods', subresource: 'log', name: 'web' }],
  ['port-forward', 'POST', '/api/v1/namespaces/default/pods/web/portforward', { verb: 'create', subresource: 'portforward' }],
  ['pod proxy keeps the rest of the path out of the subresource', 'GET', '/api/v1/namespaces/default/pods/web/proxy/metrics', { verb: 'get', subresource: 'proxy', parts: ['pods', 'web', 'proxy', 'metrics'] }],
  ['deprecated proxy verb has no subresource', 'GET', '/api/v1/proxy/namespaces/default/pods/web/metrics', { verb: 'proxy', resource: 'pods', name: 'web', subresource: '' }],
  ['group resource (kubectl get deploy web)', 'GET', '/apis/apps/v1/namespaces/prod-a/deployments/web', { verb: 'get', apiGroup: 'apps', apiVersion: 'v1', resource: 'deployments', name: 'web', namespace: 'prod-a' }],
  ['scale subresource', 'PATCH', '/apis/apps/v1/namespaces/prod-a/deployments/web/scale', { verb: 'patch', subresource: 'scale' }],
  ['cluster-scoped RBAC (kubectl get clusterrolebindings cluster-admin)', 'GET', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/cluster-admin', { apiGroup: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings', name: 'cluster-admin', namespace: '' }],
  ['server-side apply (kubectl apply --server-side)', 'PATCH', '/api/v1/namespaces/default/configmaps/cm1?fieldManager=kubectl&fieldValidation=Strict&force=false', { verb: 'patch', resource: 'configmaps', name: 'cm1' }],
  ['self subject access review (kubectl auth can-i)', 'POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { verb: 'create', apiGroup: 'authorization.k8s.io', resource: 'selfsubjectaccessreviews' }],
  ['CRD instance', 'DELETE', '/apis/example.com/v1/namespaces/prod-b/widgets/w1', { verb: 'delete', apiGroup: 'example.com', resource: 'widgets', name: 'w1', namespace: 'prod-b' }],
  ['percent-encoded name is decoded as Go does', 'GET', '/api/v1/namespaces/default/configmaps/a%3Ab', { name: 'a:b' }],
  ['node (cluster-scoped)', 'DELETE', '/api/v1/nodes/n1', { verb: 'delete', resource: 'nodes', name: 'n1', namespace: '' }],
  ['HEAD is get', 'HEAD', '/api/v1/namespaces/default/pods/web', { verb: 'get' }],
  ['unknown method has no verb', 'OPTIONS', '/api/v1/namespaces/default/pods/web', { verb: '' }],
  // discovery and non-resource URLs
  ['discovery /api (kubectl get ns)', 'GET', '/api?timeout=32s', { isResourceRequest: false, verb: 'get', path: '/api' }],
  ['discovery /apis', 'GET', '/apis?timeout=32s', { isResourceRequest: false, verb: 'get' }],
  ['group version discovery /api/v1 is not a resource request', 'GET', '/api/v1', { isResourceRequest: false, path: '/api/v1' }],
  ['/apis/apps/v1 discovery', 'GET', '/apis/apps/v1', { isResourceRequest: false }],
  ['version', 'GET', '/version?timeout=32s', { isResourceRequest: false, verb: 'get', path: '/version' }],
  ['openapi v3 (kubectl apply)', 'GET', '/openapi/v3/api/v1?hash=9D03&timeout=32s', { isResourceRequest: false, path: '/openapi/v3/api/v1' }],
  ['healthz post', 'POST', '/healthz', { isResourceRequest: false, verb: 'post' }],
];

describe('parseRequestInfo (as kube-apiserver RequestInfoFactory)', () => {
  it.each(rows)('%s', (_name, method, url, expected) => {
    expect(parseRequestInfo(method, url)).toMatchObject(expected);
  });

  it.each([
    ['encoded slash in a segment', '/api/v1/namespaces/default/pods/web%2Fexec'],
    ['dot segment', '/api/v1/namespaces/kube-system/pods/web/./exec'],
    ['dot-dot segment', '/api/v1/namespaces/default/../kube-system/pods/web/exec'],
    ['empty segment', '/api/v1/namespaces//pods'],
    ['backslash', '/api/v1/namespaces/default\\pods'],
    ['control character', '/api/v1/namespaces/de%00fault/pods'],
    ['bad escape', '/api/v1/namespaces/%zz/pods'],
    ['semicolon in the query', '/api/v1/pods?watch=false;watch=true'],
    ['not absolute', 'api/v1/pods'],
    ['watch verb without a resource', '/api/v1/watch'],
  ])('refuses a path whose meaning could differ: %s', (_n, url) => {
    expect(() => parseRequestInfo('GET', url)).toThrow(KubeRequestError);
  });

  it('describes requests for reasons', () => {
    expect(describeRequest(parseRequestInfo('DELETE', '/api/v1/namespaces/prod-a'))).toBe('delete namespaces prod-a');
    expect(describeRequest(parseRequestInfo('DELETE', '/apis/apps/v1/namespaces/prod-a/deployments/web'))).toBe('delete apps/deployments prod-a/web');
    expect(describeRequest(parseRequestInfo('POST', '/api/v1/namespaces/kube-system/pods/web/exec?command=id'))).toBe('create pods/exec kube-system/web');
    expect(describeRequest(parseRequestInfo('GET', '/api/v1/namespaces/default/pods'))).toBe('list pods in default');
    expect(describeRequest(parseRequestInfo('GET', '/version'))).toBe('get /version');
  });
});
