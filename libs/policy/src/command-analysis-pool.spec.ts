import { afterAll, describe, expect, it } from 'vitest';
import { CommandAnalysisPool } from './command-analysis-pool.js';
import { parsePolicyDocument } from './policy-document.js';
import { PolicyEngine } from './policy-engine.js';

const doc = parsePolicyDocument({ name: 'p', guardrails: [{ name: 'no-rm-r', action: 'block', match: { commands: ['rm'], args: ['-r'] } }] });
const pool = new CommandAnalysisPool();
afterAll(() => pool.close());

describe('CommandAnalysisPool (shell analysis in a worker thread)', () => {
  it('decides as the engine does on the event loop', async () => {
    const engine = new PolicyEngine(doc);
    for (const text of ['echo ' + 'a '.repeat(2000) + '; rm -rf /', 'echo ' + 'b '.repeat(2000), `bash -c "x=1; eval \\$x"`]) {
      const inWorker = await pool.evaluate('p#1', doc, text, { source: 'exec' });
      const inline = engine.evaluateCommand(text, { source: 'exec' });
      expect({ action: inWorker.action, rule: inWorker.rule }).toEqual({ action: inline.action, rule: inline.rule });
    }
  });

  it('a text that takes too long is refused as too complex and the worker is replaced; a full queue refuses at once', async () => {
    const slow = new CommandAnalysisPool({ timeoutMs: 1, maxQueued: 1 });
    try {
      const [a, b] = [slow.evaluate('p#1', doc, 'echo ' + 'x '.repeat(8000), { source: 'exec' }), slow.evaluate('p#1', doc, 'echo ' + 'y '.repeat(8000), { source: 'exec' })];
      const c = await slow.evaluate('p#1', doc, 'echo z', { source: 'exec' });
      expect(c).toMatchObject({ action: 'block', rule: 'command-too-complex', reason: expect.stringContaining('too many long commands') });
      expect(await a).toMatchObject({ action: 'block', rule: 'command-too-complex', reason: 'command too complex: analysing it took longer than 1 ms' });
      expect((await b).rule).toBe('command-too-complex');
    } finally {
      await slow.close();
    }
    expect((await pool.evaluate('p#1', doc, 'rm -r /tmp/x', { source: 'exec' })).rule).toBe('no-rm-r');
  });

  it('a slow analysis is refused even when its answer arrives before the timer fires (a busy event loop takes both at once)', async () => {
    const slow = new CommandAnalysisPool({ timeoutMs: 1 });
    try {
      const pending = slow.evaluate('p#1', doc, 'echo ' + 'x '.repeat(8000), { source: 'exec' });
      // the event loop is held (without spinning) while the worker loads, says it is ready and answers:
      // the ready message, which starts the clock, and the answer are then handled back to back
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 4000);
      expect(await pending).toMatchObject({ action: 'block', rule: 'command-too-complex', reason: 'command too complex: analysing it took longer than 1 ms' });
      expect(slow.analysed).toBe(0);
    } finally {
      await slow.close();
    }
  });
});
