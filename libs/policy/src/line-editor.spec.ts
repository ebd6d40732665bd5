import { describe, expect, it } from 'vitest';
import { evaluateShellLine } from './command-guardrails.js';
import { LineEditorModel } from './line-editor.js';
import { PolicyEngine } from './policy-engine.js';
import { shellPolicy } from './test-fixtures.js';

const ESC = '\x1b';
const LEFT = `${ESC}[D`;
const RIGHT = `${ESC}[C`;
const UP = `${ESC}[A`;
const HOME = `${ESC}[H`;
const END = `${ESC}[F`;
const DEL = `${ESC}[3~`;
const PASTE = (s: string) => `${ESC}[200~${s}${ESC}[201~`;

/** Types `keys` (up to the first Enter) and returns the line the Enter runs, or null when no Enter came. */
function typed(keys: string, m = new LineEditorModel()): { text: string; reliable: boolean; reasons: string[] } | null {
  const bytes = Buffer.from(keys, 'utf8');
  const at = m.feedUntilEnter(bytes);
  return at < 0 ? null : m.take();
}

describe('line editor model', () => {
  it.each<[string, string, string]>([
    ['plain', 'ls -la\r', 'ls -la'],
    ['LF as Enter', 'ls\n', 'ls'],
    ['backspace', 'lss\x7f -l\r', 'ls -l'],
    ['Ctrl-H', 'lss\x08\r', 'ls'],
    ['backspace at start', '\x7f\x7fls\r', 'ls'],
    ['Ctrl-U', 'rm -rf /\x15ls\r', 'ls'],
    ['Ctrl-U before the cursor only', `echo abc${LEFT}${LEFT}\x15\r`, 'bc'],
    ['Ctrl-K', `echo abc${HOME}${RIGHT}${RIGHT}\x0b\r`, 'ec'],
    ['Ctrl-W', 'echo hello world\x17\r', 'echo hello '],
    ['Ctrl-W over spaces', 'echo hello   \x17\r', 'echo '],
    ['Ctrl-C drops the line', 'rm -rf /\x03ls\r', 'ls'],
    ['left and insert', `rm -f /tmp${LEFT}${LEFT}${LEFT}${LEFT}x\r`, 'rm -f x/tmp'],
    ['insert at start with Home', `m -rf /${HOME}r\r`, 'rm -rf /'],
    ['Ctrl-A/Ctrl-E', 'm -rf\x01r\x05 /\r', 'rm -rf /'],
    ['Ctrl-B/Ctrl-F', 'r -rf /\x02\x02\x02\x02\x02\x02m\x06\r', 'rm -rf /'],
    ['End key', `ab${HOME}${END}c\r`, 'abc'],
    ['SS3 arrows (application mode)', `ab${ESC}OD${ESC}ODx\r`, 'xab'],
    ['Home/End as 1~ 4~', `ab${ESC}[1~x${ESC}[4~y\r`, 'xaby'],
    ['Delete key', `abc${HOME}${DEL}\r`, 'bc'],
    ['Ctrl-D deletes under the cursor', `abc${HOME}\x04\r`, 'bc'],
    ['right past the end is nothing', `ab${RIGHT}${RIGHT}c\r`, 'abc'],
    ['left past the start is nothing', `ab${LEFT}${LEFT}${LEFT}c\r`, 'cab'],
    ['multibyte', 'echo héllo wörld ✓\r', 'echo héllo wörld ✓'],
    ['multibyte backspace removes one character', 'echo é\x7f\r', 'echo '],
    ['multibyte with cursor', `é✓${LEFT}x\r`, 'éx✓'],
    ['emoji', 'echo 🙂\r', 'echo 🙂'],
    ['bracketed paste keeps newlines in the line', `${PASTE('echo a\recho b\n')}\r`, 'echo a\necho b\n'],
    ['bracketed paste with a tab', `${PASTE('a\tb')}\r`, 'a\tb'],
    ['Ctrl-V inserts the next key', 'a\x16\tb\r', 'a\tb'],
    ['Ctrl-L', 'ls\x0c\r', 'ls'],
    ['focus report', `ls${ESC}[I${ESC}[O\r`, 'ls'],
  ])('%s', (_name, keys, text) => {
    expect(typed(keys)).toEqual({ text, reliable: true, reasons: [] });
  });

  it.each<[string, string, string, string]>([
    ['history up', `${UP}\r`, '', 'history recall (up/down)'],
    ['history down', `ls${ESC}[B\r`, 'ls', 'history recall (up/down)'],
    ['Tab completion', 'rm -rf /et\t\r', 'rm -rf /et', 'Tab completion'],
    ['Ctrl-R', '\x12rm\r', 'rm', 'history search (Ctrl-R/Ctrl-S)'],
    ['Ctrl-P', '\x10\r', '', 'history recall (Ctrl-P/Ctrl-N)'],
    ['Ctrl-Y', 'rm -rf /\x15ls \x19\r', 'ls ', 'yank (Ctrl-Y)'],
    ['Ctrl-T', 'ab\x14\r', 'ab', 'transpose (Ctrl-T)'],
    ['undo', 'ab\x1f\r', 'ab', 'undo'],
    ['Ctrl-X Ctrl-E', 'ls\x18\x05\r', 'ls', 'a Ctrl-X command'],
    ['Alt-.', `ls ${ESC}.\r`, 'ls ', 'key Alt-.'],
    ['Alt-b word motion', `a b${ESC}bx\r`, 'a bx', 'key Alt-b'],
    ['ctrl-right', `a${ESC}[1;5C\r`, 'a', 'key ESC [1;5C'],
    ['unknown CSI', `a${ESC}[99z\r`, 'a', 'key ESC [99z'],
    ['other control key', 'a\x1c\r', 'a', 'control key 0x1c'],
  ])('%s → unreliable', (_name, keys, text, reason) => {
    const line = typed(keys)!;
    expect(line.text).toBe(text);
    expect(line.reliable).toBe(false);
    expect(line.reasons).toContain(reason);
  });

  it('the held Enter is found in a chunk; bytes before it may go upstream', () => {
    const m = new LineEditorModel();
    const data = Buffer.from('ls -l\rpwd\r');
    expect(m.feedUntilEnter(data)).toBe(5);
    expect(m.take().text).toBe('ls -l');
    expect(m.feedUntilEnter(data, 6)).toBe(9);
    expect(m.take().text).toBe('pwd');
    expect(m.feedUntilEnter(Buffer.from('ec'))).toBe(-1);
    expect(m.peek().text).toBe('ec');
  });

  it('a UTF-8 character split across chunks', () => {
    const m = new LineEditorModel();
    const b = Buffer.from('é✓');
    for (const byte of b) expect(m.feed(byte)).toBe(false);
    expect(m.peek().text).toBe('é✓');
  });

  it('an escape sequence split across chunks', () => {
    const m = new LineEditorModel();
    m.feedUntilEnter(Buffer.from('ab\x1b'));
    m.feedUntilEnter(Buffer.from('['));
    m.feedUntilEnter(Buffer.from('Dx'));
    expect(m.peek()).toEqual({ text: 'axb', reliable: true, reasons: [] });
  });

  it('reliability comes back with the next line; Ctrl-O runs the line and makes the next unreliable', () => {
    const m = new LineEditorModel();
    expect(typed(`${UP}\r`, m)!.reliable).toBe(false);
    expect(typed('ls\r', m)!.reliable).toBe(true);
    expect(typed('ls\x0f', m)).toEqual({ text: 'ls', reliable: true, reasons: [] });
    expect(typed('\r', m)!.reliable).toBe(false);
  });

  it('an endless escape sequence is given up on', () => {
    const m = new LineEditorModel();
    expect(typed(`${ESC}[${'1;'.repeat(100)}ls\r`, m)!.reliable).toBe(false);
  });
});

describe('interactive lines against the policy', () => {
  const policy = shellPolicy();
  it.each<[string, string, 'allow' | 'block' | 'require_approval', string | null]>([
    ['a typed rm -rf /', 'rm -rf /\r', 'block', 'no-recursive-delete-of-root'],
    ['edited into rm -rf /', `m -rf /${HOME}r\r`, 'block', 'no-recursive-delete-of-root'],
    ['rm -rf / erased and replaced', 'rm -rf /\x15ls\r', 'allow', null],
    ['history recall: unreliable → require approval', `${UP}\r`, 'require_approval', 'unreliableLine'],
    ['Tab completion of a blocked command stays blocked', 'rm -rf /\t\r', 'block', 'no-recursive-delete-of-root'],
    ['history expansion', 'sudo !!\r', 'block', 'dynamicCommand'],
  ])('%s', (_name, keys, action, rule) => {
    const d = evaluateShellLine(typed(keys)!, policy);
    expect({ action: d.action, rule: d.rule }, d.reason).toEqual({ action, rule });
  });

  it('unreliableLine: block, allow_and_flag', () => {
    const line = typed(`ls${UP}\r`)!;
    expect(evaluateShellLine(line, shellPolicy({ interactive: { unreliableLine: 'block' } }))).toMatchObject({ action: 'block', rule: 'unreliableLine', unreliable: true });
    expect(evaluateShellLine(line, shellPolicy({ interactive: { unreliableLine: 'allow_and_flag' } }))).toMatchObject({ action: 'allow', flagged: true, unreliable: true });
    expect(evaluateShellLine(line, policy).reason).toContain('history recall (up/down)');
  });

  it('the PolicyEngine methods the protocol modules call', () => {
    const engine = new PolicyEngine(policy, { maskingKey: Buffer.alloc(32, 1) });
    expect(engine.evaluateCommand('sudo rm -rf /')).toMatchObject({ action: 'block', rule: 'no-recursive-delete-of-root', commands: ['sudo rm -rf /', 'rm -rf /'] });
    expect(engine.evaluateCommand('sudo rm -rf /').cached).toBe(true);
    expect(engine.evaluateCommand('ls !x', { source: 'line' }).rule).toBe('dynamicCommand');
    expect(engine.evaluateCommand('ls !x').rule).toBe(null);
    expect(engine.evaluateCommand('ls', { source: 'line', reliable: false, reasons: ['Tab completion'] })).toMatchObject({ action: 'require_approval', rule: 'unreliableLine' });
    expect(engine.evaluateFile({ op: 'rmdir', path: '/etc/x' })).toMatchObject({ action: 'block', rule: 'no-etc-uploads' });
    expect(engine.evaluateFile({ op: 'link', path: '/tmp/l', target: '/root/k.pem' })).toMatchObject({ action: 'block', rule: 'no-key-downloads' });
    const m = engine.createStreamMasker()!;
    expect(m.push('4111 1111 1111 1111\n')).toBe('[REDACTED]\n');
  });
});
