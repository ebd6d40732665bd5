import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './support.js';
import { createApiApp, InvalidEnvError } from '../src/app.factory.js';

describe('api health, metrics, docs, env', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(async () => {
    await api?.close();
  });

  it('GET /healthz is 200 without a token', async () => {
    const res = await api.http.get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('GET /readyz reports database and nats', async () => {
    const res = await api.http.get('/readyz');
    expect(res.status).toBe(200);
    expect(res.body.checks).toEqual({ database: 'ok', nats: 'ok' });
  });

  it('GET /metrics is Prometheus text with http counters', async () => {
    await api.http.get('/healthz');
    const res = await api.http.get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    expect(res.text).toContain('portcullis_api_http_requests_total');
    expect(res.text).toMatch(/portcullis_api_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/);
  });

  it('GET /docs-json documents the routes; /docs serves the UI', async () => {
    const res = await api.http.get('/docs-json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toMatch(/^3\./);
    for (const path of ['/v1/me', '/v1/identities', '/v1/groups', '/v1/groups/{name}/members', '/v1/connections', '/v1/connections/{name}/credentials', '/v1/policies', '/v1/policies/{name}/evaluate', '/v1/gateways', '/v1/gateway-pools/{name}', '/v1/auth/revoke', '/v1/connections/{name}/ssh-certificate', '/v1/connections/{name}/ssh-known-hosts', '/v1/connections/{name}/kubeconfig', '/v1/sessions/{id}/recording.cast']) {
      expect(res.body.paths, path).toHaveProperty([path]);
    }
    // one body shape per connection type (postgres, ssh, kubernetes), each strict
    const body = res.body.paths['/v1/connections'].post.requestBody.content['application/json'].schema;
    const variants = (body.oneOf ?? body.anyOf) as { properties: Record<string, unknown>; additionalProperties: boolean }[];
    expect(variants.map((v) => (v.properties.type as { const: string }).const).sort()).toEqual(['kubernetes', 'postgres', 'ssh']);
    for (const v of variants) expect(v.additionalProperties).toBe(false);
    expect(variants.find((v) => 'password' in v.properties)).toBeDefined();
    expect(variants.find((v) => 'hostKeys' in v.properties)).toBeDefined();
    expect(variants.find((v) => 'impersonate' in v.properties)).toBeDefined();
    // The policy document's schema documents every top-level field the policy library accepts.
    const schemas = res.body.components?.schemas ?? {};
    const policyBody = res.body.paths['/v1/policies'].post.requestBody.content['application/json'].schema;
    const documented = policyBody.$ref ? schemas[policyBody.$ref.split('/').at(-1)] : policyBody;
    const { policyDocumentSchema } = await import('@portcullis/policy');
    const keys = Object.keys((policyDocumentSchema as unknown as { shape: object }).shape);
    expect(keys).toEqual(expect.arrayContaining(['maxStatementBytes', 'detectors', 'description']));
    for (const key of keys) {
      expect(documented.properties, `policy field ${key}`).toHaveProperty([key]);
    }
    const ui = await api.http.get('/docs/');
    expect(ui.status).toBe(200);
    expect(ui.text).toContain('swagger');
  });

  it('unknown routes answer 404 in the error shape', async () => {
    const res = await api.http.get('/v1/nope').set('Authorization', api.admin);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });

  it('routes need a token: missing → 401, garbage → 401', async () => {
    const a = await api.http.get('/v1/me');
    expect(a.status).toBe(401);
    expect(a.body.error.code).toBe('missing_token');
    const b = await api.http.get('/v1/me').set('Authorization', 'Bearer not-a-jwt');
    expect(b.status).toBe(401);
    expect(b.body.error.code).toBe('invalid_token');
  });

  it('the bootstrap token is admin', async () => {
    const res = await api.http.get('/v1/me').set('Authorization', api.admin);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ subject: 'bootstrap', kind: 'bootstrap', roles: ['admin'], identityId: null });
  });

  it('an invalid env lists every bad key', async () => {
    const err = await createApiApp({ PORTCULLIS_MASTER_KEY: 'short', API_PORT: 'x', NATS_URL: 'http://nope', LOG_LEVEL: 'loud' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidEnvError);
    const msgs = (err as InvalidEnvError).errors.join('\n');
    for (const key of ['PORTCULLIS_MASTER_KEY', 'API_PORT', 'NATS_URL', 'LOG_LEVEL']) expect(msgs).toContain(key);
  });
});
