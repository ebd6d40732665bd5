import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ed25519FromOpenSshPrivateKey, ed25519PublicKeyLine, ed25519ToOpenSshPrivateKey, generateSshEd25519, parseSshCertificate, parseSshPublicKeyLine,
  signSshCertificate, SshKeyError, verifySshCertificateSignature,
} from './ssh-keys.js';

// The real OpenSSH ssh-keygen (Debian openssh-client) reads what we write and writes what we read.
const dir = mkdtempSync(join(tmpdir(), 'ssh-keys-spec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const keygen = (...args: string[]) => execFileSync('ssh-keygen', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TZ: 'UTC' } });

describe('OpenSSH Ed25519 keys', () => {
  it('writes a private key file ssh-keygen reads, with the public key we compute', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const file = join(dir, 'host');
    writeFileSync(file, ed25519ToOpenSshPrivateKey(privateKey, 'gw host'), { mode: 0o600 });
    chmodSync(file, 0o600);
    expect(keygen('-y', '-f', file).trim()).toBe(ed25519PublicKeyLine(privateKey, 'gw host'));
    expect(ed25519FromOpenSshPrivateKey(readFileSync(file, 'utf8')).export({ format: 'jwk' })).toEqual(privateKey.export({ format: 'jwk' }));
  });

  it('reads a private key ssh-keygen wrote', () => {
    const file = join(dir, 'made-by-keygen');
    keygen('-q', '-t', 'ed25519', '-N', '', '-C', 'k', '-f', file);
    const key = ed25519FromOpenSshPrivateKey(readFileSync(file, 'utf8'));
    expect(ed25519PublicKeyLine(key, 'k')).toBe(readFileSync(`${file}.pub`, 'utf8').trim());
  });
});

describe('OpenSSH user certificates', () => {
  const ca = generateKeyPairSync('ed25519').privateKey;
  const caLine = ed25519PublicKeyLine(ca, 'ca');
  const validAfter = new Date(Date.UTC(2026, 0, 1, 10, 0, 0));
  const validBefore = new Date(Date.UTC(2026, 0, 1, 10, 15, 0));

  it.each(['ed25519', 'rsa', 'ecdsa'])('certifies a %s key; ssh-keygen -L shows the principal, key id and validity', (t) => {
    const file = join(dir, `user-${t}`);
    keygen('-q', '-t', t, '-N', '', '-f', file);
    const pub = parseSshPublicKeyLine(readFileSync(`${file}.pub`, 'utf8'));
    const line = signSshCertificate({ publicKey: pub, caKey: ca, keyId: 'credential-token', principals: ['prod-box'], validAfter, validBefore, extensions: ['permit-pty', 'permit-port-forwarding'] });
    writeFileSync(`${file}-cert.pub`, `${line}\n`);
    const out = keygen('-L', '-f', `${file}-cert.pub`);
    expect(out).toContain('user certificate');
    expect(out).toMatch(/Key ID: "credential-token"/);
    expect(out).toMatch(/Principals:\s*\n\s*prod-box\n/);
    expect(out).toMatch(/Valid: from 2026-01-01T10:00:00 to 2026-01-01T10:15:00/);
    expect(out).toMatch(/permit-pty/);
    const cert = parseSshCertificate(Buffer.from(line.split(' ')[1]!, 'base64'));
    expect(cert).toMatchObject({ keyId: 'credential-token', principals: ['prod-box'], type: 1, validAfter, validBefore, keyType: pub.type });
    expect(cert.publicKeyBlob.equals(pub.blob)).toBe(true);
    expect(verifySshCertificateSignature(cert, caLine)).toBe(true);
    expect(verifySshCertificateSignature(cert, generateSshEd25519().publicKey)).toBe(false);
  });

  it('parses and verifies a certificate ssh-keygen signed with our CA', () => {
    const caFile = join(dir, 'ca');
    writeFileSync(caFile, ed25519ToOpenSshPrivateKey(ca), { mode: 0o600 });
    const user = join(dir, 'signed-by-keygen');
    keygen('-q', '-t', 'ed25519', '-N', '', '-f', user);
    keygen('-q', '-s', caFile, '-I', 'kid', '-n', 'a,b', '-V', '20260101100000:20260101101500', `${user}.pub`);
    const cert = parseSshCertificate(Buffer.from(readFileSync(`${user}-cert.pub`, 'utf8').split(' ')[1]!, 'base64'));
    expect(cert).toMatchObject({ keyId: 'kid', principals: ['a', 'b'] });
    expect(verifySshCertificateSignature(cert, caLine)).toBe(true);
    const tampered = Buffer.from(cert.signed);
    tampered[tampered.length - 60] ^= 1;
    expect(verifySshCertificateSignature({ ...cert, signed: tampered }, caLine)).toBe(false);
  });

  it.each([
    { name: 'garbage', line: 'hello' },
    { name: 'type mismatch', line: `ssh-rsa ${generateSshEd25519().publicKey.split(' ')[1]}` },
    { name: 'truncated', line: `ssh-ed25519 ${Buffer.from(generateSshEd25519().publicKey.split(' ')[1]!, 'base64').subarray(0, 20).toString('base64')}` },
  ])('refuses a bad public key: $name', ({ line }) => {
    expect(() => signSshCertificate({ publicKey: parseSshPublicKeyLine(line), caKey: ca, keyId: 'k', principals: ['p'], validAfter, validBefore })).toThrow(SshKeyError);
  });

  it('refuses short RSA keys and truncated certificates', () => {
    const file = join(dir, 'short-rsa');
    keygen('-q', '-t', 'rsa', '-b', '1024', '-N', '', '-f', file);
    expect(() => signSshCertificate({ publicKey: parseSshPublicKeyLine(readFileSync(`${file}.pub`, 'utf8')), caKey: ca, keyId: 'k', principals: ['p'], validAfter, validBefore })).toThrow(/2048/);
    const line = signSshCertificate({ publicKey: parseSshPublicKeyLine(generateSshEd25519().publicKey), caKey: ca, keyId: 'k', principals: ['p'], validAfter, validBefore });
    const blob = Buffer.from(line.split(' ')[1]!, 'base64');
    for (const cut of [3, 40, 100, blob.length - 1]) expect(() => parseSshCertificate(blob.subarray(0, cut))).toThrow(SshKeyError);
  });
});
