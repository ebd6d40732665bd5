import type { ResolvedPolicy } from '../config/config-store.js';
import type { FileOp, ShellLine, SshAction, SshPolicy, SshVerdict, StreamMasker } from './ssh-policy.types.js';

/** Environment variables a session may set unless its policy says otherwise: sshd's stock AcceptEnv. */
const DEFAULT_ENV = /^(LANG|LC_[A-Z_]+|LANGUAGE|TZ)$/;

const allow = (reason: string): SshVerdict => ({ action: 'allow', rule: null, reason });
const NO_FORWARD: SshVerdict = { action: 'block', rule: null, reason: 'port forwarding needs a policy that allows the destination' };

/**
 * A connection with no policy: every command, line and file operation allowed (as Postgres allows
 * every statement), locale variables only, and no port forwarding — forwarding reaches past the
 * target, so it needs a policy that names the destination.
 */
export const NO_POLICY: SshPolicy = {
  name: null,
  version: null,
  command: () => allow('no policy on this connection'),
  line: () => allow('no policy on this connection'),
  file: () => allow('no policy on this connection'),
  env: (name) => DEFAULT_ENV.test(name),
  forward: () => NO_FORWARD,
  masker: () => null,
};

interface LibDecision {
  action: SshAction;
  rule: string | null;
  reason: string;
  kinds?: string[];
  dynamic?: string[];
  incomplete?: boolean;
}

/**
 * The shell side of @portcullis/policy the SSH module calls (command-guardrails.ts there). Optional
 * members: a library without them leaves policy-bound SSH sessions refusing what it cannot decide.
 */
export interface ShellPolicyLib {
  evaluateCommand?(text: string, doc: never, ctx?: { cwd?: string | null; interactive?: boolean }): LibDecision;
  evaluateFileOperation?(req: { operation: string; path: string; target?: string; cwd?: string | null }, doc: never): LibDecision;
  unreliableLineAction?(doc: never): 'require_approval' | 'block' | 'allow_and_flag';
  createStreamMasker?(doc: never, opts: { hmacKey: Buffer }): StreamMasker | null;
}

const SEVERITY: Record<SshAction, number> = { allow: 0, require_approval: 1, block: 2 };

function verdictOf(d: LibDecision): SshVerdict {
  return {
    action: d.action,
    rule: d.rule,
    reason: d.action === 'allow' ? null : d.reason,
    ...(d.kinds?.length ? { commands: d.kinds } : {}),
    ...(d.dynamic?.length ? { dynamic: true } : {}),
    ...(d.incomplete ? { incomplete: true } : {}),
  };
}

/** File operations as the policy's file rules name them (a hard link writes its new name and reads what it links). */
function operationOf(op: FileOp): { operation: string; path: string; target?: string } {
  switch (op.op) {
    case 'rmdir':
      return { operation: 'remove', path: op.path };
    case 'link':
      return { operation: 'symlink', path: op.path, target: op.target };
    case 'rename':
    case 'symlink':
      return { operation: op.op, path: op.path, target: op.target };
    default:
      return { operation: op.op, path: op.path };
  }
}

/**
 * The SSH decisions of a session bound to `policy`, through the policy library's command and file
 * guardrails. Whatever the library cannot decide is refused (fail closed) with a reason that says so.
 */
export function sshPolicyOf(policy: ResolvedPolicy, lib: ShellPolicyLib | null, maskingKey: Buffer): SshPolicy {
  const doc = policy.document as never;
  const missing = (what: string): SshVerdict => ({ action: 'block', rule: null, reason: `the gateway's policy library cannot decide ${what}; refused` });
  const masks = Array.isArray((policy.document as { masking?: unknown[] } | null)?.masking) && (policy.document as { masking: unknown[] }).masking.length > 0;
  return {
    name: policy.name,
    version: policy.version,
    command: (text) => (lib?.evaluateCommand ? verdictOf(lib.evaluateCommand(text, doc)) : missing('shell commands')),
    line: (l: ShellLine) => {
      if (!lib?.evaluateCommand) return missing('shell lines');
      const v = verdictOf(lib.evaluateCommand(l.text, doc, { interactive: true }));
      if (l.reliable) return v;
      // the reconstructed text is decided too: the stricter of it and the unreliable-line setting
      const setting = lib.unreliableLineAction?.(doc) ?? 'require_approval';
      const action: SshAction = setting === 'allow_and_flag' ? 'allow' : setting;
      if (SEVERITY[v.action] >= SEVERITY[action]) return v;
      return { action, rule: 'interactive.unreliableLine', reason: 'the gateway could not reconstruct this line reliably from the keystrokes (history, completion or cursor editing)' };
    },
    file: (op) => (lib?.evaluateFileOperation ? verdictOf(lib.evaluateFileOperation(operationOf(op), doc)) : missing('file operations')),
    env: (name) => DEFAULT_ENV.test(name),
    forward: () => NO_FORWARD,
    masker: () => {
      if (!masks) return null;
      const m = lib?.createStreamMasker?.(doc, { hmacKey: maskingKey });
      // a policy that masks and a library that cannot mask a stream: no output leaves unmasked
      if (m === undefined) throw new Error('the policy library cannot mask terminal output');
      return m;
    },
  };
}
