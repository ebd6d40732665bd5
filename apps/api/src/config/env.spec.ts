import { describe, expect, it } from 'vitest';
import { InvalidEnvError, loadApiConfig } from './env.js';

const key = 'a'.repeat(64);

describe('api env', () => {
  it('applies defaults', () => {
    const c = loadApiConfig({ PORTCULLIS_MASTER_KEY: key });
    expect(c.env).toMatchObject({
      NATS_URL: 'nats://127.0.0.1:4222', NATS_PREFIX: 'portcullis', PORTCULLIS_ISSUER: 'portcullis', API_PORT: 8080,
      API_TOKEN_TTL_SECONDS: 3600, GATEWAY_TOKEN_TTL_SECONDS: 900, GATEWAY_PUBLIC_HOST: '127.0.0.1', GATEWAY_PUBLIC_PORT: 15432, LOG_LEVEL: 'info',
    });
    expect(c.env.PORTCULLIS_BOOTSTRAP_TOKEN).toBeUndefined();
    expect(c.masterKey).toHaveLength(32);
  });

  it('accepts a base64 master key and treats blank values as unset', () => {
    const c = loadApiConfig({ PORTCULLIS_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'), API_PORT: '', PORTCULLIS_BOOTSTRAP_TOKEN: '' });
    expect(c.env.API_PORT).toBe(8080);
    expect(c.env.PORTCULLIS_BOOTSTRAP_TOKEN).toBeUndefined();
  });

  it('lists every bad key at once', () => {
    try {
      loadApiConfig({ API_PORT: '70000', GATEWAY_TOKEN_TTL_SECONDS: '0', NATS_PREFIX: 'a b', PORTCULLIS_BOOTSTRAP_TOKEN: 'short', OIDC_ISSUER_URL: 'not a url' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidEnvError);
      const keys = (err as InvalidEnvError).errors.map((e) => e.split(':')[0]).sort();
      expect(keys).toEqual(['API_PORT', 'GATEWAY_TOKEN_TTL_SECONDS', 'NATS_PREFIX', 'OIDC_ISSUER_URL', 'PORTCULLIS_BOOTSTRAP_TOKEN', 'PORTCULLIS_MASTER_KEY']);
    }
  });
});
