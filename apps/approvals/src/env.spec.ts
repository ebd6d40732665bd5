import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseEnv } from '@portcullis/protocol';
import { approvalsEnvSchema } from './env.js';
import { webhookSignature } from './webhook.sender.js';

describe('approvals env', () => {
  it('applies defaults and parses the master key', () => {
    const r = parseEnv(approvalsEnvSchema, { PORTCULLIS_MASTER_KEY: 'ab'.repeat(32) });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.env).toMatchObject({ APPROVALS_HTTP_PORT: 8081, APPROVALS_QUEUE_PREFIX: 'bull', NATS_PREFIX: 'portcullis', REDIS_URL: 'redis://127.0.0.1:6379' });
    expect(r.env.PORTCULLIS_MASTER_KEY).toHaveLength(32);
  });

  it('names every bad key', () => {
    const r = parseEnv(approvalsEnvSchema, { PORTCULLIS_MASTER_KEY: 'short', APPROVALS_HTTP_PORT: 'x', NATS_PREFIX: 'a.b' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.join('\n')).toMatch(/PORTCULLIS_MASTER_KEY/);
    expect(r.errors.join('\n')).toMatch(/APPROVALS_HTTP_PORT/);
    expect(r.errors.join('\n')).toMatch(/NATS_PREFIX/);
  });
});

describe('webhook signature', () => {
  it('is sha256=<hex HMAC of the exact body>', () => {
    const key = Buffer.alloc(32, 7);
    const body = '{"a":1}';
    expect(webhookSignature(body, key)).toBe(`sha256=${createHmac('sha256', key).update(body).digest('hex')}`);
    expect(webhookSignature(body + ' ', key)).not.toBe(webhookSignature(body, key));
  });
});
