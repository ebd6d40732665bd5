import type { ResolvedPolicy } from '../config/config-store.js';
import type { FileOp, ShellLine, SshPolicy, SshVerdict } from './ssh-policy.types.js';

/** Environment variables a session without a policy may set: sshd's stock AcceptEnv. */
const DEFAULT_ENV = /^(LANG|LC_[A-Z_]+|LANGUAGE|TZ)$/;

const allow = (reason: string): SshVerdict => ({ action: 'allow', rule: null, reason });

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
  forward: () => ({ action: 'block', rule: null, reason: 'port forwarding needs a policy that allows the destination' }),
  masker: () => null,
};

/** The slice of the policy engine the SSH module calls (libs/policy's shell side). */
interface ShellCapableEngine {
  evaluateCommand?(text: string, ctx: { source: 'exec' | 'line'; reliable?: boolean }): SshVerdict;
  evaluateFile?(op: FileOp): SshVerdict;
  evaluateEnv?(name: string, value: string): boolean;
  evaluateForward?(host: string, port: number): SshVerdict;
  createStreamMasker?(): { push(s: string): string; flush(): string; masked?: number } | null;
}

/**
 * The SSH decisions of a session bound to `policy`. Whatever the engine cannot decide is refused
 * (fail closed) with a reason that says so.
 */
export function sshPolicyOf(policy: ResolvedPolicy): SshPolicy {
  const engine = policy.engine as unknown as ShellCapableEngine;
  const missing = (what: string): SshVerdict => ({ action: 'block', rule: null, reason: `the gateway's policy library cannot decide ${what} yet; refused` });
  return {
    name: policy.name,
    version: policy.version,
    command: (text) => engine.evaluateCommand?.(text, { source: 'exec' }) ?? missing('shell commands'),
    line: (l: ShellLine) => engine.evaluateCommand?.(l.text, { source: 'line', reliable: l.reliable }) ?? missing('shell commands'),
    file: (op) => engine.evaluateFile?.(op) ?? missing('file operations'),
    env: (name, value) => engine.evaluateEnv?.(name, value) ?? DEFAULT_ENV.test(name),
    forward: (host, port) => engine.evaluateForward?.(host, port) ?? { action: 'block', rule: null, reason: 'port forwarding needs a policy that allows the destination' },
    masker: () => engine.createStreamMasker?.() ?? null,
  };
}
