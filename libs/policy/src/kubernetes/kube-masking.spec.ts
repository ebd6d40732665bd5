import { describe, expect, it } from 'vitest';
import { MaskingError } from '../errors.js';
import { parsePolicyDocument } from '../policy-document.js';
import { JsonDocumentSplitter, LAST_APPLIED, createKubeMasking } from './kube-masking.js';
import { parseRequestInfo } from './request-info.js';

const key = { hmacKey: Buffer.alloc(32, 7) };
const doc = parsePolicyDocument({ name: 'm', masking: [{ name: 'pii', detectors: ['CREDIT_CARD', 'EMAIL'], strategy: 'redact' }] });
const masking = createKubeMasking(doc, key)!;
const SECRET = Buffer.from('hunter2').toString('base64');
const lastApplied = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's1', namespace: 'prod-a' }, stringData: { password: 'hunter2' } });
const secret = (withKind = true) => ({
  ...(withKind ? { kind: 'Secret', apiVersion: 'v1' } : {}),
  metadata: { name: 's1', namespace: 'prod-a', annotations: { [LAST_APPLIED]: lastApplied } },
  data: { password: SECRET, token: Buffer.from('t0k3n').toString('base64') },
  type: 'Opaque',
});
const req = (url: string, method = 'GET') => parseRequestInfo(method, url);
const leaks = (v: unknown) => {
  const s = JSON.stringify(v);
  return s.includes(SECRET) || s.includes('hunter2') || s.includes('dDBrM24=') || s.includes('t0k3n');
};

describe('Secret masking in every response shape', () => {
  it.each([
    ['a single object (get -o yaml/json)', '/api/v1/namespaces/prod-a/secrets/s1', () => secret()],
    ['a list: items carry no kind', '/api/v1/namespaces/prod-a/secrets?limit=500', () => ({ kind: 'SecretList', apiVersion: 'v1', metadata: {}, items: [secret(false), secret(false)] })],
    ['a watch event', '/api/v1/namespaces/prod-a/secrets?watch=true', () => ({ type: 'ADDED', object: secret() })],
    ['a Table (kubectl get, -o wide) with metadata rows', '/api/v1/namespaces/prod-a/secrets?limit=500', () => ({
      kind: 'Table', apiVersion: 'meta.k8s.io/v1', columnDefinitions: [{ name: 'Name', type: 'string' }],
      rows: [{ cells: ['s1', 'Opaque', 2, '1s'], object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: secret().metadata } }],
    })],
    ['a Table with whole objects (includeObject=Object)', '/api/v1/secrets', () => ({ kind: 'Table', rows: [{ cells: ['s1'], object: secret() }] })],
    ['a kind: List of mixed objects under another resource', '/api/v1/namespaces/prod-a/configmaps', () => ({ kind: 'List', items: [{ kind: 'ConfigMap', data: { a: 'b' } }, secret()] })],
    ['a create/patch response', '/api/v1/namespaces/prod-a/secrets', () => secret()],
    ['a Secret nested in a custom resource', '/apis/example.com/v1/namespaces/x/bundles/b', () => ({ kind: 'Bundle', spec: { template: secret() } })],
  ])('%s', (_n, url, make) => {
    const body = make();
    const method = _n.includes('create') ? 'POST' : 'GET';
    const stats = masking.maskValue(body, req(url, method));
    expect(leaks(body)).toBe(false);
    expect(stats.values).toBeGreaterThan(0);
    expect(JSON.stringify(body)).toMatch(/W1JFREFDVEVEXQ==|\[REDACTED\]/);
  });

  it('the last-applied copy stays JSON kubectl can read, with its values masked', () => {
    const s = secret();
    masking.maskValue(s, req('/api/v1/namespaces/prod-a/secrets/s1'));
    const copy = JSON.parse(s.metadata.annotations[LAST_APPLIED]);
    expect(copy.stringData.password).toBe('[REDACTED]');
    expect(copy.metadata.name).toBe('s1');
  });

  it('text of a whole body: parsed only when it may hold a Secret', () => {
    const pods = Buffer.from(JSON.stringify({ kind: 'PodList', items: [{ metadata: { name: 'p' } }] }));
    expect(masking.maskJsonText(pods, req('/api/v1/pods')).text).toBe(pods);
    const list = JSON.stringify({ kind: 'List', items: [secret()] });
    expect(leaks(JSON.parse(String(masking.maskJsonText(list, req('/api/v1/pods')).text)))).toBe(false);
    // an escaped spelling of the kind still gets parsed
    const escaped = list.replace('"Secret"', '"\\u0053ecret"');
    expect(leaks(JSON.parse(String(masking.maskJsonText(escaped, req('/api/v1/pods')).text)))).toBe(false);
    expect(() => masking.maskJsonText('{"kind":"Secret", nope', req('/api/v1/secrets'))).toThrow(MaskingError);
  });

  it('secrets: allow passes them; no masking at all gives no masker', () => {
    const allow = parsePolicyDocument({ name: 'a', kubernetes: { secrets: 'allow' } });
    expect(createKubeMasking(allow, key)).toBeNull();
    const s = secret();
    createKubeMasking(parsePolicyDocument({ name: 'b', kubernetes: { secrets: 'allow' }, masking: [{ name: 'e', detectors: ['EMAIL'], strategy: 'redact' }] }), key)!.maskValue(s, req('/api/v1/secrets'));
    expect(s.data.password).toBe(SECRET);
    expect(createKubeMasking(parsePolicyDocument({ name: 'c' }), key)).not.toBeNull();
  });

  it('ConfigMap values and their last-applied copy pass the detectors', () => {
    const cm = { kind: 'ConfigMap', metadata: { name: 'c', annotations: { [LAST_APPLIED]: JSON.stringify({ kind: 'ConfigMap', data: { owner: 'alice@example.com' } }) } }, data: { owner: 'alice@example.com', card: '4111 1111 1111 1111', plain: 'x' } };
    masking.maskValue(cm, req('/api/v1/namespaces/d/configmaps/c'));
    expect(JSON.stringify(cm)).not.toContain('alice@example.com');
    expect(JSON.stringify(cm)).not.toContain('4111 1111 1111 1111');
    expect(cm.data.plain).toBe('x');
    const list = { kind: 'ConfigMapList', items: [{ metadata: { name: 'c' }, data: { owner: 'bob@example.com' } }] };
    masking.maskValue(list, req('/api/v1/configmaps'));
    expect(JSON.stringify(list)).not.toContain('bob@example.com');
  });

  it('pod logs pass the detectors; modes per request', () => {
    expect(masking.maskLog('user alice@example.com logged in\n').text).not.toContain('alice@example.com');
    expect(masking.modeFor(req('/api/v1/namespaces/d/pods/p/log?follow=true'))).toBe('text');
    expect(masking.modeFor(req('/api/v1/namespaces/d/pods'))).toBe('json');
    expect(masking.modeFor(req('/version'))).toBe('none');
    expect(masking.modeFor(req('/api/v1/namespaces/d/pods/p/proxy/x'))).toBe('proxy');
    expect(masking.modeFor(req('/api/v1/namespaces/d/services/https:kubernetes:443/proxy/api/v1/secrets'))).toBe('proxy');
    expect(masking.modeFor(req('/api/v1/nodes/n1/proxy/configz'))).toBe('proxy');
  });
});

describe('other routes to a secret', () => {
  const RAW = 'eyJhbGciOiJSUzI1NiJ9.c2VydmljZWFjY291bnQ.sig';
  const tokenRequest = () => ({ kind: 'TokenRequest', apiVersion: 'authentication.k8s.io/v1', metadata: { name: 'builder' }, spec: { audiences: ['api'] }, status: { token: RAW, expirationTimestamp: '2026-12-07T16:00:00Z' } });

  it('a TokenRequest (kubectl create token) has its issued token replaced, by request and by kind', () => {
    const t = tokenRequest();
    expect(masking.maskValue(t, req('/api/v1/namespaces/d/serviceaccounts/builder/token', 'POST')).values).toBe(1);
    expect(t.status.token).toBe('[REDACTED]');
    expect(t.status.expirationTimestamp).toBe('2026-12-07T16:00:00Z');
    const nested = { kind: 'List', items: [tokenRequest()] };
    masking.maskValue(nested, req('/apis/example.com/v1/things'));
    expect(JSON.stringify(nested)).not.toContain(RAW);
    expect(masking.mustParse(Buffer.from(JSON.stringify(tokenRequest())), req('/apis/x.io/v1/y'))).toBe(true);
    const allow = createKubeMasking(parsePolicyDocument({ name: 'a', kubernetes: { secrets: 'allow' }, masking: [{ name: 'e', detectors: ['EMAIL'], strategy: 'redact' }] }), key)!;
    const kept = tokenRequest();
    allow.maskValue(kept, req('/api/v1/namespaces/d/serviceaccounts/builder/token', 'POST'));
    expect(kept.status.token).toBe(RAW);
  });

  it('a SecretList from anywhere (an aggregated API, a proxied API server) has its kindless items masked', () => {
    const list = { kind: 'SecretList', apiVersion: 'v1', items: [secret(false)] };
    const text = JSON.stringify(list);
    expect(masking.mustParse(Buffer.from(text), req('/api/v1/namespaces/d/services/https:kubernetes:443/proxy/api/v1/secrets'))).toBe(true);
    const r = masking.maskJsonText(text, req('/apis/aggregated.example.com/v1/namespaces/d/things'));
    expect(leaks(JSON.parse(String(r.text)))).toBe(false);
  });

  it('the last-applied copy of any kind is masked by the kind it holds (a Secret pasted onto a ConfigMap)', () => {
    const cm = { kind: 'ConfigMap', metadata: { name: 'c', annotations: { [LAST_APPLIED]: lastApplied } }, data: {} };
    const text = JSON.stringify(cm);
    // the kind is only inside the escaped annotation: the byte search still finds it
    const r = masking.maskJsonText(text, req('/api/v1/namespaces/d/pods'));
    expect(String(r.text)).not.toContain('hunter2');
    const pod = { kind: 'Pod', metadata: { name: 'p', annotations: { [LAST_APPLIED]: lastApplied } } };
    masking.maskValue(pod, req('/api/v1/namespaces/d/pods/p'));
    expect(JSON.stringify(pod)).not.toContain('hunter2');
    expect(JSON.parse(pod.metadata.annotations[LAST_APPLIED]).stringData.password).toBe('[REDACTED]');
  });

  it('ConfigMap binaryData: decoded and scanned when it is text, replaced when it is not', () => {
    const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
    const cm = { kind: 'ConfigMap', metadata: { name: 'c' }, binaryData: { owners: b64('owner: alice@example.com\n'), blob: b64(Buffer.from([0xff, 0x00, 0xfe, 0x41])), plain: b64('nothing here') } };
    const stats = masking.maskValue(cm, req('/api/v1/namespaces/d/configmaps/c'));
    expect(stats.values).toBe(2);
    expect(Buffer.from(cm.binaryData.owners, 'base64').toString()).not.toContain('alice@example.com');
    expect(Buffer.from(cm.binaryData.owners, 'base64').toString()).toContain('owner: ');
    expect(Buffer.from(cm.binaryData.blob, 'base64').toString()).toBe('[REDACTED]');
    expect(Buffer.from(cm.binaryData.plain, 'base64').toString()).toBe('nothing here');
  });

  it('Event messages (core/v1) and notes (events.k8s.io) pass the detectors', () => {
    const list = { kind: 'EventList', items: [{ metadata: { name: 'e1' }, reason: 'Failed', message: 'login for alice@example.com failed' }] };
    masking.maskValue(list, req('/api/v1/namespaces/d/events'));
    expect(JSON.stringify(list)).not.toContain('alice@example.com');
    const ev = { kind: 'Event', apiVersion: 'events.k8s.io/v1', metadata: { name: 'e2' }, note: 'card 4111 1111 1111 1111 declined' };
    expect(masking.mustParse(Buffer.from(JSON.stringify(ev)), req('/apis/events.k8s.io/v1/events'))).toBe(true);
    masking.maskValue(ev, req('/apis/events.k8s.io/v1/events'));
    expect(ev.note).not.toContain('4111');
    const table = { kind: 'Table', rows: [{ cells: ['3s', 'Warning', 'Failed', 'pod/p', 'login for alice@example.com failed'], object: { kind: 'PartialObjectMetadata', metadata: { name: 'e1' } } }] };
    masking.maskValue(table, req('/api/v1/namespaces/d/events'));
    expect(JSON.stringify(table)).not.toContain('alice@example.com');
  });
});

describe('JsonDocumentSplitter (watch streams)', () => {
  const events = [
    { type: 'ADDED', object: { kind: 'Secret', data: { a: 'e30=' }, metadata: { name: 'x}{"\\' } } },
    { type: 'MODIFIED', object: { kind: 'Pod', metadata: { name: 'p' }, list: [1, [2, { a: '"]' }]] } },
    { type: 'BOOKMARK', object: { kind: 'Pod', metadata: { resourceVersion: '9' } } },
  ];
  const stream = Buffer.from(events.map((e) => `${JSON.stringify(e)}\n`).join(''));

  it('yields whole documents however the bytes are cut', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const s = new JsonDocumentSplitter();
      const docs = [...s.push(stream.subarray(0, cut)), ...s.push(stream.subarray(cut))];
      expect(docs.map((d) => JSON.parse(d.toString()))).toEqual(events);
    }
  });

  it('one byte at a time', () => {
    const s = new JsonDocumentSplitter();
    const docs: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) docs.push(...s.push(stream.subarray(i, i + 1)));
    expect(docs.length).toBe(3);
    expect(s.pending).toBe(false);
  });

  it('refuses garbage and oversize documents', () => {
    expect(() => new JsonDocumentSplitter().push(Buffer.from('hello'))).toThrow(MaskingError);
    expect(() => new JsonDocumentSplitter(10).push(Buffer.from('{"a":"0123456789'))).toThrow(MaskingError);
  });
});
