import { describe, expect, it } from 'vitest';
import { parsePolicyDocument } from './policy-document.js';
import { SshSettingsEvaluator, parseDestinationPattern } from './ssh-settings.js';

const settings = new SshSettingsEvaluator({
  env: { allow: ['LANG', 'LC_*', 'APP_*', '*', 'PATH'] },
  forwarding: { local: ['10.0.0.0/8:5432', 'db.internal:5432-5433', '*.svc.cluster.local:443', '[fd00::/64]:22', 'localhost:*'], remote: ['127.0.0.1:8080'] },
});

describe('ssh.env.allow', () => {
  it.each([
    // name, value, allowed
    ['LD_PRELOAD', '/tmp/x.so', false], // a glob (*) never passes a variable that changes what runs
    ['BASH_ENV', '/tmp/x', false],
    ['BASH_FUNC_ls%%', '() { id; }', false],
    ['PROMPT_COMMAND', 'id', false],
    ['PYTHONSTARTUP', '/tmp/x', false],
    ['GIT_SSH_COMMAND', 'id', false],
    ['PATH', '/tmp', true], // named exactly: the admin's choice
    ['LANG', 'C.UTF-8', true],
    ['LC_ALL', 'C', true],
    ['APP_MODE', 'x', true],
    ['FOO', 'x', true],
    ['FOO', 'x'.repeat(5000), false],
    ['FOO', 'a\0b', false],
    ['1BAD', 'x', false],
    ['A=B', 'x', false],
  ] as const)('%s', (name, value, allowed) => {
    expect(settings.env(name, value).allowed).toBe(allowed);
  });

  it('without a setting: sshd stock AcceptEnv (LANG, LC_*, LANGUAGE, TZ)', () => {
    const d = new SshSettingsEvaluator(undefined);
    expect(['LANG', 'LC_CTYPE', 'LANGUAGE', 'TZ', 'TERM', 'LD_PRELOAD'].map((n) => d.env(n, 'x').allowed)).toEqual([true, true, true, true, false, false]);
    expect(d.env('TERM', 'x').reason).toBe('environment variable TERM is not allowed by the policy (ssh.env.allow)');
  });
});

describe('ssh.forwarding', () => {
  it.each([
    // host, port, allowed (tricky spellings first)
    ['127.1', 5432, false], // inet_aton spellings of an address are refused as names
    ['2130706433', 5432, false],
    ['0x7f.0.0.1', 5432, false],
    ['10.0.0.1.nip.io', 5432, false], // a name never matches an address pattern
    ['db.internal.evil.com', 5432, false],
    ['evil.com', 443, false],
    ['svc.cluster.local', 443, false], // *. needs at least one label
    ['a.b.svc.cluster.local', 443, true],
    ['DB.INTERNAL', 5433, true],
    ['db.internal.', 5432, true],
    ['db.internal', 5434, false],
    ['10.1.2.3', 5432, true],
    ['11.1.2.3', 5432, false],
    ['::ffff:10.1.2.3', 5432, true], // the same address, IPv4-mapped
    ['fd00::5', 22, true],
    ['fd01::5', 22, false],
    ['localhost', 1, true],
    ['', 22, false],
    ['a b', 22, false],
  ] as const)('%s:%d', (host, port, allowed) => {
    expect(settings.forward(host, port).allowed).toBe(allowed);
  });

  it('names the rule that allowed, and says why a refusal', () => {
    expect(settings.forward('10.9.9.9', 5432)).toEqual({ allowed: true, rule: 'ssh.forwarding.local[0]', reason: null });
    expect(settings.forward('10.9.9.9', 22).reason).toBe('port forwarding to 10.9.9.9:22 is not allowed by the policy (ssh.forwarding.local)');
    expect(settings.remoteForward('0.0.0.0', 8080).allowed).toBe(false);
    expect(settings.remoteForward('127.0.0.1', 8080).rule).toBe('ssh.forwarding.remote[0]');
    expect(new SshSettingsEvaluator(undefined).forward('10.0.0.1', 22).reason).toBe('port forwarding to 10.0.0.1:22 is refused: the policy allows no destination (ssh.forwarding.local)');
  });

  it.each(['db', 'db:', ':22', 'db:0', 'db:70000', 'db:9-8', '10.0.0.0/33:22', 'a*b:22', '*.*:22', '127.1:22', 'fd00::1:22', 'db/8:22'])('pattern %s is refused by validation', (p) => {
    expect(typeof parseDestinationPattern(p)).toBe('string');
    expect(() => parsePolicyDocument({ name: 'p', ssh: { forwarding: { local: [p] } } })).toThrow(/ssh\.forwarding\.local\.0/);
  });

  it('the document takes the settings and refuses unknown keys', () => {
    expect(parsePolicyDocument({ name: 'p', ssh: { env: { allow: ['LANG'] }, forwarding: { local: ['db:5432'] } } }).ssh?.forwarding).toEqual({ local: ['db:5432'], remote: [] });
    expect(() => parsePolicyDocument({ name: 'p', ssh: { envs: {} } })).toThrow();
    expect(() => parsePolicyDocument({ name: 'p', ssh: { env: { allow: ['A=B'] } } })).toThrow(/ssh\.env\.allow\.0/);
  });
});
