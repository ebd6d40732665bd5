import { describe, expect, it } from 'vitest';
import { subjectMatches } from './subject-pattern.js';

describe('subjectMatches', () => {
  it.each([
    { name: 'regex metacharacters are literal', pattern: 'a.b', subject: 'axb', expected: false },
    { name: 'dot matches a dot', pattern: 'a.b', subject: 'a.b', expected: true },
    { name: 'anchored at the start', pattern: 'demo-agent', subject: 'evil-demo-agent', expected: false },
    { name: 'anchored at the end', pattern: 'demo-agent', subject: 'demo-agent-2', expected: false },
    { name: 'star matches across separators', pattern: 'repo:acme/*', subject: 'repo:acme/app:ref:refs/heads/main', expected: true },
    { name: 'star matches nothing', pattern: 'ci:*', subject: 'ci:', expected: true },
    { name: 'star in the middle', pattern: 'system:serviceaccount:*:deployer', subject: 'system:serviceaccount:prod:deployer', expected: true },
    { name: 'star in the middle, wrong tail', pattern: 'system:serviceaccount:*:deployer', subject: 'system:serviceaccount:prod:admin', expected: false },
    { name: 'lone star matches anything', pattern: '*', subject: 'anything at all', expected: true },
    { name: 'case-sensitive', pattern: 'Demo', subject: 'demo', expected: false },
    { name: 'brackets are literal', pattern: '[a]', subject: 'a', expected: false },
    { name: 'newline in subject does not escape the anchor', pattern: 'demo', subject: 'demo\nx', expected: false },
    { name: 'exact', pattern: 'demo-agent', subject: 'demo-agent', expected: true },
  ])('$name', ({ pattern, subject, expected }) => {
    expect(subjectMatches(pattern, subject)).toBe(expected);
  });
});
