import { describe, expect, it } from 'vitest';
import * as direct from './index.js';
import { policyEngine, policyLib } from './loader.js';

describe('the policy loader', () => {
  it('loads the library once; policyEngine hands it over with the SQL parser ready', async () => {
    const [a, b] = await Promise.all([policyLib(), policyLib()]);
    expect(a).toBe(b);
    expect(a.parsePolicyDocument).toBe(direct.parsePolicyDocument);
    const [e1, e2] = await Promise.all([policyEngine(), policyEngine()]);
    expect(e1).toBe(a);
    expect(e2).toBe(a);
    expect(e1.parserHealth().healthy).toBe(true);
    expect(e1.analyzeSql('SELECT 1').parseError).toBeNull();
  });
});
