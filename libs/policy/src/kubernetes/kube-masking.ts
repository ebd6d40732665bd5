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
 *   A list whose kind names its items (`SecretList`, as an aggregated API or a proxied API server
 *   sends it) makes its items Secrets whatever the request was.
 * - TokenRequests (`kubectl create token`, `serviceaccounts/<name>/token`): `status.token` is
 *   replaced when Secrets are (`kubernetes.secrets: allow` lets it through).
 * - ConfigMaps: `data` values (and their last-applied copy) pass through the policy's content
 *   detectors (masking rules with `detectors`); `binaryData` values are base64-decoded and scanned
 *   when they are UTF-8 text, and replaced whole when they are not (a detector cannot read them).
 * - Events: `message` (core/v1) and `note` (events.k8s.io) pass through the detectors, and so do
 *   the cells of a Table of events or configmaps (`kubectl get events` prints the message).
 * - The last-applied copy of any object is masked by the same rules (it is the object as applied).
 * - Pod logs: each line passes through the same detectors.
 * - `…/proxy` responses (a pod's, service's or node's own HTTP): JSON is masked by the kinds it
 *   names, then, like any text, passes through the detectors; anything else is withheld by the
 *   gateway (mode `proxy`).
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
  | 'text'
  /** `…/proxy`: JSON masked by kind and through the detectors, text through the detectors, anything else withheld */
  | 'proxy';

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
    if (info.verb === 'proxy' || PROXY_SUBRESOURCES.has(info.subresource)) return 'proxy';
    if (info.resource === 'pods' && info.subresource === 'log') return this.detectors ? 'text' : 'none';
    return 'json';
  }

  /**
   * Whether a JSON body of a response to `info` must be parsed at all: always for the resources
   * masked by context (secrets, serviceaccounts/token, configmaps and events with detectors);
   * otherwise only when it names a masked kind somewhere — which a plain byte search finds, since a
   * kind is spelt that way in any JSON, quoted or inside an escaped annotation, or as a list kind
   * (`SecretList`); an escape like `\u0053` anywhere also forces the parse.
   */
  mustParse(body: Buffer | string, info: KubeRequestInfo): boolean {
    if (this.contextKind(info) !== null) return true;
    const s = typeof body === 'string' ? body : null;
    const has = (needle: string): boolean => (s !== null ? s.includes(needle) : (body as Buffer).includes(needle));
    if (has('\\u')) return true;
    if (this.redactSecrets && (has('Secret') || has('TokenRequest'))) return true;
    if (this.detectors && (has('ConfigMap') || has('Event'))) return true;
    return false;
  }

  private contextKind(info: KubeRequestInfo): MaskedKind | null {
    if (info.resource === 'serviceaccounts' && info.subresource === 'token' && info.apiGroup === '') return this.redactSecrets ? 'TokenRequest' : null;
    if (info.resource === 'events' && info.subresource === '' && (info.apiGroup === '' || info.apiGroup === 'events.k8s.io')) return this.detectors ? 'Event' : null;
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

  private walk(node: unknown, context: MaskedKind | null, stats: KubeMaskStats, depth: number): void {
    if (depth > 64) throw new MaskingError('the response is nested too deeply to be masked');
    if (Array.isArray(node)) {
      for (const item of node) this.walk(item, context, stats, depth + 1);
      return;
    }
    if (!isObject(node)) return;
    const kind = typeof node.kind === 'string' ? node.kind : null;
    // List items and Table rows carry no kind (or a wrapper's): in a response about secrets they are
    // Secrets, and so are the items of a SecretList. An object that says it is some other kind leaves
    // that context.
    let treatAs: MaskedKind | null;
    if (kind !== null && MASKED_KINDS.has(kind)) treatAs = kind as MaskedKind;
    else if (kind === null || WRAPPER_KINDS.has(kind)) treatAs = context;
    else if (kind.endsWith('List')) treatAs = MASKED_KINDS.has(kind.slice(0, -4)) ? (kind.slice(0, -4) as MaskedKind) : context;
    else treatAs = null;
    if (treatAs === 'Secret' && this.redactSecrets) this.redactSecret(node, stats);
    else if (treatAs === 'TokenRequest' && this.redactSecrets) this.redactTokenRequest(node, stats);
    else if (treatAs === 'ConfigMap' && this.detectors) this.scanConfigMap(node, stats);
    else if (treatAs === 'Event' && this.detectors) this.scanEvent(node, stats);
    // a Table's cells are the printer's columns: an Event's MESSAGE is one of them
    if (kind === 'Table' && (treatAs === 'Event' || treatAs === 'ConfigMap') && this.detectors) this.scanCells(node, stats);
    stats.values += this.lastApplied(node, treatAs, depth);
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
    if (n > 0) {
      stats.secrets++;
      stats.values += n;
    }
  }

  /** A TokenRequest's issued token (`status.token`); the request's own fields say nothing secret. */
  private redactTokenRequest(node: JsonObject, stats: KubeMaskStats): void {
    const status = node.status;
    if (!isObject(status) || status.token === undefined || status.token === null || status.token === REDACTED) return;
    status.token = REDACTED;
    stats.secrets++;
    stats.values++;
  }

  private scanConfigMap(node: JsonObject, stats: KubeMaskStats): void {
    if (isObject(node.data)) this.scanStrings(node.data, Object.keys(node.data), stats);
    const binary = node.binaryData;
    if (isObject(binary)) {
      for (const k of Object.keys(binary)) {
        const v = binary[k];
        if (v === REDACTED_B64) continue;
        const text = typeof v === 'string' ? utf8Text(v) : null;
        if (text === null) {
          // not text (or not base64): no detector can read it, so it does not leave
          binary[k] = REDACTED_B64;
          stats.values++;
          continue;
        }
        const r = this.maskLog(text);
        if (r.findings > 0) {
          binary[k] = Buffer.from(r.text, 'utf8').toString('base64');
          stats.values += r.findings;
        }
      }
    } else if (binary !== undefined && binary !== null) {
      node.binaryData = {};
      stats.values++;
    }
  }

  private scanCells(table: JsonObject, stats: KubeMaskStats): void {
    if (!Array.isArray(table.rows)) return;
    for (const row of table.rows) {
      if (!isObject(row) || !Array.isArray(row.cells)) continue;
      this.scanStrings(row.cells, row.cells.keys(), stats);
    }
  }

  /** The string values of `holder` at `keys` through the detectors, replaced where they found something. */
  private scanStrings<K extends string | number>(holder: Record<K, Json>, keys: Iterable<K>, stats: KubeMaskStats): void {
    for (const k of keys) {
      const v = holder[k];
      if (typeof v !== 'string') continue;
      const r = this.maskLog(v);
      if (r.findings > 0) {
        holder[k] = r.text;
        stats.values += r.findings;
      }
    }
  }

  /** An Event's free text: core/v1 `message`, events.k8s.io/v1 `note`. */
  private scanEvent(node: JsonObject, stats: KubeMaskStats): void {
    this.scanStrings<string>(node, ['message', 'note'], stats);
  }


  /**
   * Masks the object copy in the last-applied annotation by the same rules as the object (its own
   * kind, else the object's); a copy that cannot be read is replaced whole when the object is of a
   * masked kind. Returns how many values it replaced.
   */
  private lastApplied(node: JsonObject, treatAs: MaskedKind | null, depth: number): number {
    const meta = node.metadata;
    if (!isObject(meta) || !isObject(meta.annotations)) return 0;
    const text = meta.annotations[LAST_APPLIED];
    if (typeof text !== 'string') return 0;
    let copy: unknown;
    try {
      copy = JSON.parse(text);
    } catch {
      copy = null;
    }
    if (!isObject(copy)) {
      if (treatAs === null) return 0;
      meta.annotations[LAST_APPLIED] = REDACTED;
      return 1;
    }
    const inner = { secrets: 0, values: 0 };
    this.walk(copy, treatAs, inner, depth + 1);
    if (inner.values > 0) meta.annotations[LAST_APPLIED] = `${JSON.stringify(copy)}\n`;
    return inner.values;
  }
}

/** The kinds whose values are masked (and whose lists, `<kind>List`, hold them). */
type MaskedKind = 'Secret' | 'TokenRequest' | 'ConfigMap' | 'Event';
const MASKED_KINDS = new Set<string>(['Secret', 'TokenRequest', 'ConfigMap', 'Event']);

/** The text a base64 value holds, or null when it is not base64 of UTF-8 text. */
function utf8Text(b64: string): string | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(b64, 'base64'));
  } catch {
    return null;
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
