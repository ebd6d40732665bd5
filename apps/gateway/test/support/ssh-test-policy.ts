import { LineEditorModel } from '@portcullis/policy';
import type { FileOp, TerminalPolicy, CommandVerdict, StreamMasker } from '../../src/terminal/command-policy.types.js';

/**
 * SSH decisions by marker, for tests of the transport (what the gateway does with a decision) apart
 * from the shell classifier: a command or line containing BLOCKME is blocked, HOLDME needs approval;
 * writes under a `locked` directory and reads of `*.pem` are refused; PORTCULLIS_OK may be set;
 * output values SECRET-<6 digits> are masked as a stream.
 */
export function markerPolicy(opts: { unreliable?: CommandVerdict['action'] } = {}): TerminalPolicy {
  const decide = (text: string): CommandVerdict => {
    if (text.includes('BLOCKME')) return { action: 'block', rule: 'no-blockme', reason: 'blockme is off limits' };
    if (text.includes('HOLDME')) return { action: 'require_approval', rule: 'hold', reason: 'needs a second pair of eyes' };
    return { action: 'allow', rule: null, reason: null };
  };
  return {
    name: 'markers',
    version: 1,
    command: decide,
    line: (l) => (l.reliable ? decide(l.text) : { action: opts.unreliable ?? 'block', rule: 'unreliable-line', reason: 'the gateway could not follow this line' }),
    file: (op: FileOp) => {
      const writes = op.op !== 'read' && op.op !== 'list';
      if (writes && (/\/locked(\/|$)/.test(op.path) || ('target' in op && /\/locked(\/|$)/.test(op.target)))) return { action: 'block', rule: 'no-locked-writes', reason: 'nothing is written under locked/' };
      if (op.op === 'read' && op.path.endsWith('.pem')) return { action: 'block', rule: 'no-pem-downloads', reason: 'keys stay on the host' };
      if (op.path.includes('HOLDME')) return { action: 'require_approval', rule: 'hold-file', reason: 'this file needs a second pair of eyes' };
      return { action: 'allow', rule: null, reason: null };
    },
    filePathRules: true,
    env: (name) => (name === 'PORTCULLIS_OK' ? { allowed: true, reason: null } : { allowed: false, reason: `environment variable ${name} is not allowed` }),
    forward: (_host, port) => (port === 1 ? { action: 'allow', rule: 'port-1', reason: null } : { action: 'block', rule: null, reason: 'not this destination' }),
    remoteForward: () => ({ action: 'block', rule: null, reason: 'no remote forwarding' }),
    masker: () => new SecretMasker(),
    lineModel: () => new LineEditorModel(),
  };
}

const PATTERN = 'SECRET-';
const DIGITS = 6;

/** Masks SECRET-dddddd, holding back a tail that could be the start of one split across chunks. */
export class SecretMasker implements StreamMasker {
  private tail = '';
  masked = 0;

  push(chunk: string): string {
    const text = this.tail + chunk;
    const out = text.replace(/SECRET-\d{6}/g, () => {
      this.masked++;
      return '[masked]';
    });
    // keep back what could still grow into a match
    let keep = 0;
    for (let n = Math.min(out.length, PATTERN.length + DIGITS - 1); n > 0; n--) {
      const s = out.slice(-n);
      const prefix = s.slice(0, PATTERN.length);
      if (PATTERN.startsWith(prefix) && /^\d*$/.test(s.slice(PATTERN.length)) && !(s.length >= PATTERN.length + DIGITS)) {
        keep = n;
        break;
      }
    }
    this.tail = out.slice(out.length - keep);
    return out.slice(0, out.length - keep);
  }

  flush(): string {
    const t = this.tail;
    this.tail = '';
    return t;
  }
}
