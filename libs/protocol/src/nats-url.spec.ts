import { describe, expect, it } from 'vitest';
import { natsConnectOptions, redactNatsUrl } from './nats-url.js';

describe('natsConnectOptions', () => {
  it.each([
    { url: 'nats://127.0.0.1:4222', want: { servers: ['nats://127.0.0.1:4222'] } },
    { url: 'nats://gateway:s3cr%40t@nats:4222', want: { servers: ['nats://nats:4222'], user: 'gateway', pass: 's3cr@t' } },
    { url: 'nats://tok3n@nats:4222', want: { servers: ['nats://nats:4222'], token: 'tok3n' } },
    { url: 'tls://api:pw@n1:4222, tls://api:pw@n2:4222', want: { servers: ['tls://n1:4222', 'tls://n2:4222'], user: 'api', pass: 'pw' } },
  ])('$url', ({ url, want }) => {
    expect(natsConnectOptions(url)).toEqual(want);
  });

  it.each([
    ['nats://gateway:s3cret@nats:4222', 'nats://gateway:***@nats:4222'],
    ['nats://tok3n@nats:4222,nats://tok3n@n2:4222', 'nats://***@nats:4222,nats://***@n2:4222'],
    ['nats://127.0.0.1:4222', 'nats://127.0.0.1:4222'],
  ])('redacts %s', (url, want) => {
    expect(redactNatsUrl(url)).toBe(want);
  });
});
