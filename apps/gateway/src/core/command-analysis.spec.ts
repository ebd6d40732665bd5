import * as lib from '@portcullis/policy';
import { afterAll, describe, expect, it } from 'vitest';
import type { ResolvedPolicy } from '../config/config-store.js';
import { CommandAnalysis, INLINE_ANALYSIS_CHARS } from './command-analysis.js';

const document = lib.parsePolicyDocument({ name: 'p', guardrails: [{ name: 'no-rm', action: 'block', match: { commands: ['rm'] }, reason: 'no deleting' }] });
const policy = { name: 'p', version: 1, document, engine: new lib.PolicyEngine(document) } as unknown as ResolvedPolicy;
const long = (cmd: string) => `${cmd} ${'a '.repeat(INLINE_ANALYSIS_CHARS)}`;

describe('CommandAnalysis (the core\'s shell analysis, long texts off the event loop)', () => {
  const analysis = new CommandAnalysis();
  afterAll(() => analysis.close());

  it('decides a short text inline and a long one in the worker, with the same decisions', async () => {
    expect(await analysis.evaluate(policy, lib, 'rm -rf /', { source: 'exec' })).toMatchObject({ action: 'block', rule: 'no-rm' });
    expect(analysis.counts.analysed).toBe(0);
    expect(await analysis.evaluate(policy, lib, long('rm'), { source: 'exec' })).toMatchObject({ action: 'block', rule: 'no-rm' });
    expect(await analysis.evaluate(policy, lib, long('echo'), { source: 'line', reliable: true })).toMatchObject({ action: 'allow' });
    expect(analysis.counts).toEqual({ analysed: 2, refused: 0 });
  });

  it('fails closed, saying why: a long text the worker cannot take is blocked as command-too-complex', async () => {
    const full = new CommandAnalysis({ maxQueued: 0 });
    try {
      expect(await full.evaluate(policy, lib, long('echo'), { source: 'exec' })).toMatchObject({ action: 'block', rule: 'command-too-complex', reason: expect.stringContaining('too many long commands') });
      expect(full.counts.refused).toBe(1);
    } finally {
      await full.close();
    }
    expect(await full.evaluate(policy, lib, long('echo'), { source: 'exec' })).toMatchObject({ action: 'block', rule: 'command-too-complex', reason: 'the gateway is stopping' });
    // a short text still has its decision (no worker involved)
    expect(await full.evaluate(policy, lib, 'echo ok', { source: 'exec' })).toMatchObject({ action: 'allow' });
  });
});
