/**
 * The attributes Kubernetes itself authorizes a request by, derived from its method and URL the way
 * kube-apiserver does (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go, RequestInfoFactory):
 * verb (get/list/watch/create/update/patch/delete/deletecollection, or proxy), API group and
 * version, resource, subresource, namespace and name; anything outside /api and /apis is a
 * non-resource request whose verb is the lower-cased method.
 *
 * The gateway decides on these attributes and then forwards the same URL, so this parse must never
 * see a different request than the API server will. Go decodes the path before splitting it
 * (`%2F` becomes a separator) and the API server's mux does not clean `.`/`..`/empty segments, so
 * paths whose meaning depends on such details are refused (KubeRequestError) rather than guessed.
 */

export interface KubeRequestInfo {
  /** true for /api and /apis requests with a resource; false for /version, /healthz, /openapi/v2, … */
  isResourceRequest: boolean;
  /** the decoded path */
  path: string;
  verb: string;
  /** `api` or `apis` (resource requests) */
  apiPrefix: string;
  /** '' for the core group */
  apiGroup: string;
  apiVersion: string;
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
  /** the path segments from the resource on (`pods/web/log`), as kube-apiserver keeps them */
  parts: string[];
  /** exec/attach: the `command` parameters in order (exec only) and the stream flags */
  command?: string[];
  container?: string;
  stdin?: boolean;
  tty?: boolean;
}

/** The request cannot be classified the way the API server would; the gateway refuses it (400). */
export class KubeRequestError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KubeRequestError';
  }
}

const API_PREFIXES = new Set(['api', 'apis']);
const GROUPLESS_PREFIXES = new Set(['api']);
/** `/apis/g/v/watch/…` and `/api/v1/proxy/…` (deprecated forms the API server still parses) */
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(['proxy']);
/** `/api/v1/namespaces/{ns}/status|finalize` are subresources of the namespace, not resources in it */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

const METHOD_VERBS: Record<string, string> = { POST: 'create', GET: 'get', HEAD: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

/** Go's runtime.Convert_Slice_string_To_bool: the first value, false only for "false"/"0" (so `?watch=` is true). */
function queryBool(values: string[]): boolean | undefined {
  if (values.length === 0) return undefined;
  const v = values[0]!.toLowerCase();
  return !(v === 'false' || v === '0');
}

/** `metadata.name=x` / `metadata.name==x` as the only term of a field selector (fields.RequiresExactMatch). */
function exactNameSelector(selector: string | undefined): string | null {
  if (!selector) return null;
  const terms = selector.split(',').map((t) => t.trim()).filter((t) => t !== '');
  for (const t of terms) {
    const m = /^metadata\.name\s*(==|=)\s*(.*)$/.exec(t);
    if (m && !m[2]!.startsWith('=')) return m[2]!.trim();
  }
  return null;
}

/** path.IsValidPathSegmentName: not `.`/`..`, no `/` or `%` */
function validPathSegmentName(name: string): boolean {
  return name !== '.' && name !== '..' && !name.includes('/') && !name.includes('%');
}

/** Backslashes and control characters (and, in a raw path, spaces and `#`) are never part of a plain path. */
function hasForbiddenChar(s: string, raw: boolean): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x5c || (raw && (c === 0x20 || c === 0x23))) return true;
  }
  return false;
}

/**
 * Splits the raw request target into decoded path segments and the query. Refuses a path that is not
 * one plain spelling: encoded `/`, `.`/`..` or empty segments, backslashes, control characters,
 * undecodable escapes.
 */
export function splitRequestTarget(target: string): { segments: string[]; path: string; query: URLSearchParams } {
  if (!target.startsWith('/')) throw new KubeRequestError('the request target must be an absolute path');
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const rawQuery = q < 0 ? '' : target.slice(q + 1);
  if (hasForbiddenChar(rawPath, true)) throw new KubeRequestError('the request path holds characters that are not allowed');
  // Go (url.ParseQuery, since 1.17) refuses semicolons as separators; the API server then sees no query at all
  if (rawQuery.includes(';')) throw new KubeRequestError('semicolons are not allowed in the query');
  const trimmed = rawPath.replace(/^\/+|\/+$/g, '');
  const segments: string[] = [];
  if (trimmed !== '') {
    for (const raw of trimmed.split('/')) {
      let seg: string;
      try {
        seg = decodeURIComponent(raw);
      } catch (err) {
        throw new KubeRequestError('the request path has an invalid percent-encoding', { cause: err });
      }
      if (seg === '' || seg === '.' || seg === '..' || seg.includes('/') || hasForbiddenChar(seg, false)) {
        throw new KubeRequestError('the request path is not in canonical form (empty, dot or encoded-slash segments)');
      }
      segments.push(seg);
    }
  }
  let query: URLSearchParams;
  try {
    query = new URLSearchParams(rawQuery);
  } catch (err) {
    throw new KubeRequestError('the query cannot be parsed', { cause: err });
  }
  return { segments, path: `/${segments.join('/')}`, query };
}

/** The request's attributes, as kube-apiserver's RequestInfoFactory derives them. */
export function parseRequestInfo(method: string, target: string): KubeRequestInfo {
  const { segments, path, query } = splitRequestTarget(target);
  const upper = method.toUpperCase();
  const info: KubeRequestInfo = {
    isResourceRequest: false, path, verb: method.toLowerCase(),
    apiPrefix: '', apiGroup: '', apiVersion: '', namespace: '', resource: '', subresource: '', name: '', parts: [],
  };
  if (segments.length < 3 || !API_PREFIXES.has(segments[0]!)) return info;
  let parts = segments.slice();
  const apiPrefix = parts.shift()!;
  let apiGroup = '';
  if (!GROUPLESS_PREFIXES.has(apiPrefix)) {
    // one part for the group, one for the version, one for the resource
    if (parts.length < 3) return info;
    apiGroup = parts.shift()!;
  }
  info.isResourceRequest = true;
  info.apiPrefix = apiPrefix;
  info.apiGroup = apiGroup;
  info.apiVersion = parts.shift()!;
  if (SPECIAL_VERBS.has(parts[0]!)) {
    if (parts.length < 2) throw new KubeRequestError(`unable to determine kind and namespace from url ${path}`);
    info.verb = parts.shift()!;
  } else {
    info.verb = METHOD_VERBS[upper] ?? '';
  }
  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      info.namespace = parts[1]!;
      // `/namespaces/{ns}/{resource}/…`: the resource is the one after the namespace, unless it is a
      // subresource of the namespace itself
      if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
    }
  }
  info.parts = parts;
  if (parts.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(info.verb)) info.subresource = parts[2]!;
  if (parts.length >= 2) info.name = parts[1]!;
  if (parts.length >= 1) info.resource = parts[0]!;

  if (info.name === '' && info.verb === 'get') {
    info.verb = queryBool(query.getAll('watch')) ? 'watch' : 'list';
    const name = exactNameSelector(query.get('fieldSelector') ?? undefined);
    if (name !== null && validPathSegmentName(name)) info.name = name;
  }
  if (info.name === '' && info.verb === 'delete') info.verb = 'deletecollection';

  if (info.resource === 'pods' && (info.subresource === 'exec' || info.subresource === 'attach')) {
    if (info.subresource === 'exec') info.command = query.getAll('command');
    const container = query.get('container');
    if (container !== null) info.container = container;
    info.stdin = queryBool(query.getAll('stdin')) ?? false;
    info.tty = queryBool(query.getAll('tty')) ?? false;
  }
  return info;
}

/** `delete apps/v1 deployments prod-a/web` — how a request is named in reasons and logs. */
export function describeRequest(info: KubeRequestInfo): string {
  if (!info.isResourceRequest) return `${info.verb} ${info.path}`;
  const res = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
  const group = info.apiGroup ? `${info.apiGroup}/` : '';
  const where = info.namespace && !(info.resource === 'namespaces' && info.name === info.namespace) ? `${info.namespace}/` : '';
  const target = info.name ? ` ${where}${info.name}` : info.namespace && info.resource !== 'namespaces' ? ` in ${info.namespace}` : '';
  return `${info.verb} ${group}${res}${target}`;
}
