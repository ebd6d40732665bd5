/**
 * Glob over a workload token's `sub`: `*` matches any run of characters (also none, also `/` and `:`);
 * everything else matches itself. Anchored at both ends, case-sensitive.
 *   `system:serviceaccount:ci:*` matches `system:serviceaccount:ci:deployer`
 *   `repo:acme/app:ref:refs/heads/*` matches `repo:acme/app:ref:refs/heads/main`
 */
export function subjectMatches(pattern: string, subject: string): boolean {
  const source = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${source}$`, 's').test(subject);
}
