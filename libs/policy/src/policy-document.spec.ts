import { describe, expect, it } from 'vitest';
import { PolicyValidationError } from './errors.js';
import { parsePolicyDocument, resultRecordingOf } from './policy-document.js';

const valid = {
  name: 'default',
  guardrails: [{ name: 'g', action: 'block', match: { statements: ['drop  table'] } }],
  masking: [{ name: 'm', columns: ['email'], strategy: 'partial' }],
};

describe('recording.results', () => {
  it.each([
    [undefined, null],
    [{}, null],
    [{ results: 'off' }, null],
    [{ results: false }, null],
    [{ results: { rows: 20, bytes: 65536 } }, { rows: 20, bytes: 65536 }],
  ])('%j keeps %j', (recording, kept) => {
    expect(resultRecordingOf(parsePolicyDocument({ ...valid, ...(recording ? { recording } : {}) }))).toEqual(kept);
  });
});

describe('parsePolicyDocument', () => {
  it('accepts the CONTRACT shape and fills defaults', () => {
    const doc = parsePolicyDocument(valid);
    expect(doc.dynamicSql).toBe('block');
    expect(doc.guardrails[0].match.statements).toEqual(['DROP TABLE']);
    expect(parsePolicyDocument({ name: 'x' })).toMatchObject({ guardrails: [], masking: [], dynamicSql: 'block' });
  });

  it.each([
    ['name missing', { guardrails: [] }, 'name'],
    ['bad action', { ...valid, guardrails: [{ name: 'g', action: 'deny', match: { statements: ['DROP'] } }] }, 'guardrails.0.action'],
    ['typo in a statement kind', { ...valid, guardrails: [{ name: 'g', action: 'block', match: { statements: ['DROP', 'DELET'] } }] }, 'guardrails.0.match.statements.1'],
    ['empty match', { ...valid, guardrails: [{ name: 'g', action: 'block', match: {} }] }, 'guardrails.0.match'],
    ['unknown match key', { ...valid, guardrails: [{ name: 'g', action: 'block', match: { statement: ['DROP'] } }] }, 'guardrails.0.match'],
    ['bad copy', { ...valid, guardrails: [{ name: 'g', action: 'block', match: { copy: 'pipe' } }] }, 'guardrails.0.match.copy'],
    ['duplicate guardrail', { ...valid, guardrails: [valid.guardrails[0], valid.guardrails[0]] }, 'guardrails.1.name'],
    ['bad strategy', { ...valid, masking: [{ name: 'm', columns: ['x'], strategy: 'scramble' }] }, 'masking.0.strategy'],
    ['rule with nothing to match', { ...valid, masking: [{ name: 'm', strategy: 'redact' }] }, 'masking.0'],
    ['unknown detector', { ...valid, masking: [{ name: 'm', detectors: ['EMAIL', 'PASSPORT'], strategy: 'redact' }] }, 'masking.0.detectors.1'],
    ['invalid custom regex', { ...valid, detectors: [{ name: 'X', pattern: 'a(b' }] }, 'detectors.0.pattern'],
    ['custom regex matching empty', { ...valid, detectors: [{ name: 'X', pattern: 'a*' }] }, 'detectors.0.pattern'],
    ['custom detector shadows a builtin', { ...valid, detectors: [{ name: 'EMAIL', pattern: 'x' }] }, 'detectors.0.name'],
    ['bad webhook url', { ...valid, approval: { approvers: ['a'], webhook: { url: 'ftp://x' } } }, 'approval.webhook.url'],
    ['bad dynamicSql', { ...valid, dynamicSql: 'maybe' }, 'dynamicSql'],
    ['tiny maxStatementBytes', { ...valid, maxStatementBytes: 1 }, 'maxStatementBytes'],
    ['not an object', 'policy', '(root)'],
    ['recording.results without bytes', { ...valid, recording: { results: { rows: 20 } } }, 'recording.results'],
    ['recording.results too many rows', { ...valid, recording: { results: { rows: 100_000, bytes: 1024 } } }, 'recording.results.rows'],
    ['recording.results unknown word', { ...valid, recording: { results: 'all' } }, 'recording.results'],
    ['recording with a typo', { ...valid, recording: { result: 'off' } }, 'recording'],
  ])('refuses %s with the path', (_name, input, path) => {
    let err: unknown;
    try {
      parsePolicyDocument(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PolicyValidationError);
    const e = err as PolicyValidationError;
    expect(e.issues.map((i) => i.path)).toContain(path);
    expect(e.message).toContain(path);
    expect(e.cause).toBeDefined();
  });
});
