import { MaskingError } from '../errors.js';
import { maskText } from '../masking/index.js';
import type { PolicyDocument } from '../policy-document.js';
import { kubernetesSettings } from './kube-guardrails.js';
import type { KubeRequestInfo } from './request-info.js';

/**
 * Masking of Kubernetes API responses (JSON; the gateway asks the API server for nothing else).
 *
 * - Secrets: every value of `data` and `stringData` is replaced, in every shape a Secret comes in —
 *   the object itself, the items of a list, the object of a watch event, the row objects of a Table
 *   (`kubectl get`, also `-o wide`), a `kind: List` of anything — and so is the copy of the object
 *   kubectl keeps in the `kubectl.kubernetes.io/last-applied-configuration` annotation. `data`
 *   values stay valid base64 (of `[REDACTED]`) so typed clients still decode the object.
 *   In a response to a request for `secrets`, every object in it is taken for a Secret (list items
 *   and Table rows carry no `kind`); elsewhere an object is one when its `kind` says so.
 * - ConfigMaps: `data` values (and their last-applied copy) pass through the policy's content
 *   detectors (masking rules with `detectors`).
 * - Pod logs: each line passes through the same detectors.
 *
 * YAML never crosses the wire: `kubectl get -o yaml` asks for JSON and formats it itself.
 */

export const REDACTED = '[REDACTED]';
const REDACTED_B64 = Buffer.from(REDACTED).toString('base64');
export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

export type KubeMaskMode =
  /** pass the response as it comes */
  | 'none'
  /** parse the JSON body (or each watch event) and mask it; unparsable → withheld */
  | 'json'
  /** pod logs: text through the detectors, line by line */
  | 'text';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Subresources whose responses are not API objects but whatever the proxied pod, service or node sends. */
const PROXY_SUBRESOURCES = new Set(['proxy']);

export interface KubeMaskStats {
  secrets: number;
  values: number;
}

export class KubeMasking {
  readonly redactSecrets: boolean;
  readonly detectors: boolean;

  constructor(
    private readonly doc: PolicyDocument,
    private readonly opts: { hmacKey: Buffer },
  ) {
    this.redactSecrets = kubernetesSettings(doc).secrets !== 'allow';
    this.detectors = (doc.masking ?? []).some((r) => (r.detectors?.length ?? 0) > 0);
  }

  /** Whether the policy masks anything at all on Kubernetes responses. */
  get active(): boolean {
    return this.redactSecrets || this.detectors;
  }

  /** How the response to this request is treated. */
  modeFor(info: KubeRequestInfo): KubeMaskMode {
    if (!this.active || !info.isResourceRequest) return 'none';
    if (info.verb === 'proxy' || PROXY_SUBRESOURCES.has(info.subresource)) return 'none';
    if (info.resource === 'pods' && info.subresource === 'log') return this.detectors ? 'text' : 'none';
    return 'json';
  }

  /**
   * Whether a JSON body of a response to `info` must be parsed at all: always for secrets and
   * configmaps; otherwise only when it names a Secret (or a ConfigMap, with detectors) somewhere —
   * which a plain byte search finds, since `"Secret"` is how the kind is spelt in any JSON
   * (an escape like `\u0053` anywhere also forces the parse).
   */
  mustParse(body: Buffer | string, info: KubeRequestInfo): boolean {
    if (this.contextKind(info) !== null) return true;
    const s = typeof body === 'string' ? body : null;
    const has = (needle: string): boolean => (s !== null ? s.includes(needle) : (body as Buffer).includes(needle));
    if (has('\\u')) return true;
    if (this.redactSecrets && has('"Secret"')) return true;
    if (this.detectors && has('"ConfigMap"')) return true;
    return false;
  }

  private contextKind(info: KubeRequestInfo): 'Secret' | 'ConfigMap' | null {
    if (info.apiGroup !== '' || info.subresource !== '') return null;
    if (info.resource === 'secrets' && this.redactSecrets) return 'Secret';
    if (info.resource === 'configmaps' && this.detectors) return 'ConfigMap';
    return null;
  }

  /**
   * Masks one JSON document (an object, list, Table, Status or watch event) in place. Returns how many
   * values it replaced.
   */
  maskValue(doc: unknown, info: KubeRequestInfo, stats: KubeMaskStats = { secrets: 0, values: 0 }): KubeMaskStats {
    this.walk(doc, this.contextKind(info), stats, 0);
    return stats;
  }

  /** One JSON text (a whole body or one watch event): the masked text, or the same object when nothing changed. */
  maskJsonText(text: string | Buffer, info: KubeRequestInfo, stats: KubeMaskStats = { secrets: 0, values: 0 }): { text: string | Buffer; stats: KubeMaskStats } {
    if (!this.mustParse(text, info)) return { text, stats };
    let doc: unknown;
    try {
      doc = JSON.parse(typeof text === 'string' ? text : text.toString('utf8'));
    } catch (err) {
      throw new MaskingError('the response is not JSON the gateway can mask', { cause: err });
    }
    const before = stats.values + stats.secrets;
    this.maskValue(doc, info, stats);
    return { text: stats.values + stats.secrets === before ? text : JSON.stringify(doc), stats };
  }

  /** Pod log text through the detectors. */
  maskLog(text: string): { text: string; findings: number } {
    if (!this.detectors) return { text, findings: 0 };
    const r = maskText(text, this.doc, this.opts);
    return { text: r.value, findings: r.findings.length };
  }

  private walk(node: unknown, context: 'Secret' | 'ConfigMap' | null, stats: KubeMaskStats, depth: number): void {
    if (depth > 64) throw new MaskingError('the response is nested too deeply to be masked');
    if (Array.isArray(node)) {
      for (const item of node) this.walk(item, context, stats, depth + 1);
      return;
    }
    if (!isObject(node)) return;
    const kind = typeof node.kind === 'string' ? node.kind : null;
    // List items and Table rows carry no kind (or a wrapper's): in a response about secrets they are
    // Secrets. An object that says it is some other kind leaves that context.
    const wrapper = kind === null || WRAPPER_KINDS.has(kind) || kind.endsWith('List');
    const treatAs = kind === 'Secret' ? 'Secret' : kind === 'ConfigMap' ? 'ConfigMap' : wrapper ? context : null;
    if (treatAs === 'Secret' && this.redactSecrets) this.redactSecret(node, stats);
    else if (treatAs === 'ConfigMap' && this.detectors) this.scanConfigMap(node, stats);
    for (const key of Object.keys(node)) {
      if (key === 'metadata') continue;
      const value = node[key];
      if (typeof value === 'object' && value !== null) this.walk(value, treatAs, stats, depth + 1);
    }
  }

  private redactSecret(node: JsonObject, stats: KubeMaskStats): void {
    let n = 0;
    const data = node.data;
    if (isObject(data)) {
      for (const k of Object.keys(data)) {
        if (data[k] !== REDACTED_B64) n++;
        data[k] = REDACTED_B64;
      }
    } else if (data !== undefined && data !== null) {
      node.data = {};
      n++;
    }
    const stringData = node.stringData;
    if (isObject(stringData)) {
      for (const k of Object.keys(stringData)) {
        stringData[k] = REDACTED;
        n++;
      }
    } else if (stringData !== undefined && stringData !== null) {
      node.stringData = {};
      n++;
    }
    n += this.lastApplied(node, (copy) => {
      const inner = { secrets: 0, values: 0 };
      this.redactSecret(copy, inner);
      return inner.values;
    });
    if (n > 0) {
      stats.secrets++;
      stats.values += n;
    }
  }

  private scanConfigMap(node: JsonObject, stats: KubeMaskStats): void {
    const data = node.data;
    if (isObject(data)) {
      for (const k of Object.keys(data)) {
        const v = data[k];
        if (typeof v !== 'string') continue;
        const r = this.maskLog(v);
        if (r.findings > 0) {
          data[k] = r.text;
          stats.values += r.findings;
        }
      }
    }
    stats.values += this.lastApplied(node, (copy) => {
      const inner = { secrets: 0, values: 0 };
      this.scanConfigMap(copy, inner);
      return inner.values;
    });
  }

  /** Masks the object copy in the last-applied annotation with `mask`; an unreadable copy is replaced whole. */
  private lastApplied(node: JsonObject, mask: (copy: JsonObject) => number): number {
    const meta = node.metadata;
    if (!isObject(meta) || !isObject(meta.annotations)) return 0;
    const text = meta.annotations[LAST_APPLIED];
    if (typeof text !== 'string') return 0;
    let copy: unknown;
    try {
      copy = JSON.parse(text);
    } catch {
      meta.annotations[LAST_APPLIED] = REDACTED;
      return 1;
    }
    if (!isObject(copy)) {
      meta.annotations[LAST_APPLIED] = REDACTED;
      return 1;
    }
    const n = mask(copy);
    if (n > 0) meta.annotations[LAST_APPLIED] = `${JSON.stringify(copy)}\n`;
    return n;
  }
}

/** Kinds the API server wraps objects of the requested resource in (their members are still those objects). */
const WRAPPER_KINDS = new Set(['Table', 'PartialObjectMetadata', 'PartialObjectMetadataList', 'WatchEvent', 'Status', 'List']);

/** null when the policy masks nothing on Kubernetes responses. */
export function createKubeMasking(doc: PolicyDocument, opts: { hmacKey: Buffer }): KubeMasking | null {
  const m = new KubeMasking(doc, opts);
  return m.active ? m : null;
}

/**
 * Splits a JSON watch stream (`application/json;stream=watch`: one JSON document per event, as the
 * API server's framer writes them) into whole documents, however the bytes were cut. Tracks strings
 * and nesting so it never relies on newlines. Caps one document at `maxBytes`.
 */
export class JsonDocumentSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private started = false;

  constructor(private readonly maxBytes = 64 * 1024 * 1024) {}

  /** Whole documents completed by this chunk (each without surrounding whitespace). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let from = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (!this.started) {
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
          from = i + 1;
          continue;
        }
        if (c !== 0x7b && c !== 0x5b) throw new MaskingError('the watch stream holds something that is not a JSON object');
        this.started = true;
        from = i;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) this.depth++;
      else if (c === 0x7d || c === 0x5d) {
        this.depth--;
        if (this.depth === 0) {
          const piece = chunk.subarray(from, i + 1);
          out.push(this.parts.length ? Buffer.concat([...this.parts, piece]) : Buffer.from(piece));
          this.parts = [];
          this.size = 0;
          this.started = false;
          from = i + 1;
        }
      }
    }
    if (this.started && from < chunk.length) {
      const rest = chunk.subarray(from);
      this.size += rest.length;
      if (this.size > this.maxBytes) throw new MaskingError(`a watch event is larger than ${this.maxBytes} bytes`);
      this.parts.push(Buffer.from(rest));
    }
    return out;
  }

  /** true when a document has begun and not ended */
  get pending(): boolean {
    return this.started;
  }
}
