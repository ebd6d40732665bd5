import { describe, expect, it } from 'vitest';
import { globMatch, globsIntersect, normalisePathPattern, normaliseRuleGlob, resolvePathPattern } from './shell-paths.js';

describe('path globs', () => {
  it.each<[string, string, boolean]>([
    ['/etc/**', '/etc', true],
    ['/etc/**', '/etc/passwd', true],
    ['/etc/**', '/etc/ssh/sshd_config', true],
    ['/etc/**', '/etcd', false],
    ['/etc/**', '/tmp/etc/x', false],
    ['/*', '/usr', true],
    ['/*', '/', true], // * may be empty, as in any glob
    ['/*', '/usr/bin', false],
    ['/', '/', true],
    ['**/*.pem', '/a/b/c.pem', true],
    ['**/*.pem', 'c.pem', true],
    ['**/*.pem', '/c.pem.bak', false],
    ['/**/x', '/x', true],
    ['/**/x', '/a/b/x', true],
    ['/**/x', '/ax', false],
    ['/dev/sd*', '/dev/sda1', true],
    ['/dev/sd?', '/dev/sda', true],
    ['/dev/sd?', '/dev/sda1', false],
    ['/dev/sd[a-c]', '/dev/sdb', true],
    ['/dev/sd[!a-c]', '/dev/sdb', false],
    ['/dev/sd[!a-c]', '/dev/sdd', true],
    ['mkfs*', 'mkfs.ext4', true],
    ['mkfs*', 'xmkfs', false],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
  ])('globMatch(%j, %j) = %s', (glob, text, expected) => {
    expect(globMatch(glob, text)).toBe(expected);
  });

  it.each<[string, string, boolean]>([
    // both sides globs: is there a path both take?
    ['/*', '/*', true],
    ['/*', '/home/*', false],
    ['/', '**', true],
    ['/etc/**', '/e*', true],
    ['/etc/**', '/e*/passwd', true],
    ['/etc/**', '/usr/*', false],
    ['/dev/sd*', '/dev/s?a', true],
    ['/dev/sd*', '/dev/[xyz]*', false],
    ['/dev/sd*', '/dev/[rst]*', true],
    ['/**', './build', false],
    ['**/build', './build', true],
    ['/etc/\\*', '/etc/*', true],
  ])('globsIntersect(%j, %j) = %s', (a, b, expected) => {
    expect(globsIntersect(a, b)).toBe(expected);
    expect(globsIntersect(b, a)).toBe(expected);
  });

  it('is linear enough for long globs', () => {
    expect(globsIntersect('/**/'.repeat(200) + 'x', '/a'.repeat(2000) + '/y')).toBe(false);
  });
});

describe('path normalisation', () => {
  it.each<[string, string]>([
    ['/', '/'],
    ['//', '/'],
    ['/./', '/'],
    ['/etc/../', '/'],
    ['/../../..', '/'],
    ['/a/./b//c/', '/a/b/c'],
    ['/a/b/../../c', '/c'],
    ['/e*/../x', '**'],
  ])('%j → %j', (p, expected) => {
    expect(normalisePathPattern(p)).toBe(expected);
  });

  it.each<[string, string | null, 'anywhere' | 'relative', string]>([
    ['build', null, 'relative', './build'],
    ['./build/', null, 'relative', './build'],
    ['.', null, 'relative', '.'],
    ['../x', null, 'relative', '/**/x'],
    ['build', null, 'anywhere', '/**/build'],
    ['build', '/srv', 'relative', '/srv/build'],
    ['../../..', '/srv/app', 'relative', '/'],
    ['x', '**', 'relative', '/**/x'],
    ['**', null, 'relative', '**'],
    ['/abs', null, 'relative', '/abs'],
  ])('resolve %j in %j (%s) → %j', (p, cwd, mode, expected) => {
    expect(resolvePathPattern(p, cwd, mode)).toBe(expected);
  });

  it.each<[string, string]>([
    ['/etc/../boot/**', '/boot/**'],
    ['*.pem', '**/*.pem'],
    ['./x', '**/x'],
    ['**/id_rsa', '**/id_rsa'],
  ])('rule glob %j → %j', (g, expected) => {
    expect(normaliseRuleGlob(g)).toBe(expected);
  });
});
