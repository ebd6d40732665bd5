import { describe, expect, it } from 'vitest';
import {
  configSnapshotSchema, connectionConfigSchema, generatePoolKeyPair, isKubernetesConnection, isSshConnection, kubernetesTargetSecretSchema,
  sealForPool, sshTargetSecretSchema, SSH_HOST_KEY_CONTEXT, terminalEventDataSchema, wireEventSchema,
} from './index.js';

const pool = generatePoolKeyPair();
const sealed = sealForPool(pool.publicKey, 'x', 'connection:c');
const base = {
  name: 'c', host: 'db', port: 5432, database: 'app', username: 'u', secret: sealed, tls: 'prefer',
  allowedGroups: ['engineers'], policy: null, recording: 'required', approvalMode: 'wait',
};
const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('connectionConfigSchema', () => {
  it('keeps a postgres connection of an older snapshot as it was (kind defaults to postgres)', () => {
    const c = connectionConfigSchema.parse(base);
    expect(c).toEqual({ ...base, kind: 'postgres' });
    expect(isSshConnection(c) || isKubernetesConnection(c)).toBe(false);
  });

  it.each([
    { name: 'ssh with pinned host keys', input: { ...base, kind: 'ssh', port: 22, database: '', tls: 'disable', ssh: { hostKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== host'] } }, ok: true },
    { name: 'ssh without host keys', input: { ...base, kind: 'ssh', ssh: { hostKeys: [] } }, ok: false },
    { name: 'ssh without the ssh member', input: { ...base, kind: 'ssh' }, ok: false },
    { name: 'ssh with a garbage host key', input: { ...base, kind: 'ssh', ssh: { hostKeys: ['not a key'] } }, ok: false },
    { name: 'ssh without a secret', input: { ...base, kind: 'ssh', secret: null, ssh: { hostKeys: ['ssh-ed25519 AAAA'] } }, ok: false },
    { name: 'kubernetes', input: { ...base, kind: 'kubernetes', kubernetes: { server: 'https://10.0.0.1:6443', caPem: CA, impersonate: true } }, ok: true },
    { name: 'kubernetes over http', input: { ...base, kind: 'kubernetes', kubernetes: { server: 'http://10.0.0.1:6443', caPem: CA } }, ok: false },
    { name: 'kubernetes without a CA', input: { ...base, kind: 'kubernetes', kubernetes: { server: 'https://k:6443', caPem: 'x' } }, ok: false },
    { name: 'unknown kind', input: { ...base, kind: 'mysql' }, ok: false },
  ])('$name', ({ input, ok }) => {
    const r = connectionConfigSchema.safeParse(input);
    expect(r.success).toBe(ok);
    if (r.success && r.data.kind === 'ssh') expect(isSshConnection(r.data)).toBe(true);
    if (r.success && r.data.kind === 'kubernetes') {
      expect(isKubernetesConnection(r.data)).toBe(true);
      expect(r.data.kubernetes?.impersonate).toBe(true);
    }
  });
});

describe('target secrets', () => {
  it.each([
    { input: { password: 'p' }, ok: true },
    { input: { privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----' }, ok: true },
    { input: { privateKey: '-----BEGIN RSA PRIVATE KEY-----\nx', passphrase: 'pp' }, ok: true },
    { input: { password: '' }, ok: false },
    { input: { password: 'p', privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----' }, ok: false },
    { input: { privateKey: 'ssh-ed25519 AAAA' }, ok: false },
    { input: {}, ok: false },
  ])('ssh $input', ({ input, ok }) => expect(sshTargetSecretSchema.safeParse(input).success).toBe(ok));

  it.each([
    { input: { token: 't' }, ok: true },
    { input: { clientCert: CA, clientKey: '-----BEGIN PRIVATE KEY-----\nx' }, ok: true },
    { input: { clientCert: CA }, ok: false },
    { input: { token: 't', extra: 1 }, ok: false },
  ])('kubernetes $input', ({ input, ok }) => expect(kubernetesTargetSecretSchema.safeParse(input).success).toBe(ok));
});

describe('configSnapshotSchema', () => {
  const snap = {
    revision: 1, pool: 'default', generatedAt: new Date().toISOString(), issuer: 'i', verificationKeys: [{ kty: 'OKP', kid: 'k' }],
    revokedTokenIds: [], eventKey: sealed, maskingKey: sealed, connections: [base], policies: [],
  };
  it('parses a snapshot without ssh/tls (older api) and one with them', () => {
    expect(configSnapshotSchema.parse(snap).ssh).toBeUndefined();
    const full = {
      ...snap,
      ssh: { hostKey: sealForPool(pool.publicKey, 'k', SSH_HOST_KEY_CONTEXT), userCaPublicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 portcullis-user-ca' },
      tls: { caPem: CA, certPem: CA, key: sealed },
    };
    expect(configSnapshotSchema.parse(full).ssh?.userCaPublicKey).toMatch(/^ssh-ed25519 /);
  });
});

describe('terminal events', () => {
  it.each([
    { input: { stream: 's1', event: 'start', t: 0, width: 80, height: 24, command: 'bash' }, ok: true },
    { input: { stream: 's1', event: 'o', t: 0.25, data: 'hello\r\n' }, ok: true },
    { input: { stream: 's1', event: 'r', t: 1, data: '120x40' }, ok: true },
    { input: { stream: 's1', event: 'r', t: 1, data: 'big' }, ok: false },
    { input: { stream: 's1', event: 'o', t: 1 }, ok: false },
    { input: { stream: 's1', event: 'o', t: -1, data: 'x' }, ok: false },
    { input: { stream: '', event: 'end', t: 2 }, ok: false },
  ])('$input', ({ input, ok }) => expect(terminalEventDataSchema.safeParse(input).success).toBe(ok));

  it.each(['terminal', 'command', 'file', 'kube.request'])('the wire schema takes a %s event', (type) => {
    const e = { id: crypto.randomUUID(), sessionId: 's', seq: 2, time: new Date().toISOString(), type, identity: 'a', connection: 'c', gateway: 'g', data: {} };
    expect(wireEventSchema.safeParse(e).success).toBe(true);
  });
});
