import type { ResolvedPolicy } from '../config/config-store.js';
import type { CommandAnalysis, CommandAnalysisRequest } from '../core/command-analysis.js';
import type { PolicyLib } from '../core/policy-lib.js';
import type { SessionCore } from '../core/session-core.types.js';
import type { FileOp, ShellLine, TerminalPolicy, CommandVerdict } from './command-policy.types.js';

/** Environment variables a session without a policy may set: sshd's stock AcceptEnv (@portcullis/policy DEFAULT_SSH_ENV). */
const DEFAULT_ENV = /^(LANG|LC_[A-Za-z0-9_]*|LANGUAGE|TZ)$/;
const MAX_ENV_VALUE = 4096;

const allow = (reason: string): CommandVerdict => ({ action: 'allow', rule: null, reason });
const NO_FORWARD: CommandVerdict = { action: 'block', rule: null, reason: 'port forwarding needs a policy that allows the destination (ssh.forwarding)' };

/**
 * A connection with no policy: every command, line and file operation allowed (as Postgres allows
 * every statement), locale variables only, and no port forwarding — forwarding reaches past the
 * target, so it needs a policy that names the destination.
 */
export const NO_POLICY: TerminalPolicy = {
  name: null,
  version: null,
  command: () => allow('no policy on this connection'),
  line: () => allow('no policy on this connection'),
  file: () => allow('no policy on this connection'),
  env: (name, value) =>
    DEFAULT_ENV.test(name) && value.length <= MAX_ENV_VALUE && !value.includes('\0')
      ? { allowed: true, reason: null }
      : { allowed: false, reason: `environment variable ${name.slice(0, 64)} is refused: only LANG, LC_*, LANGUAGE and TZ pass without a policy` },
  forward: () => NO_FORWARD,
  remoteForward: () => NO_FORWARD,
  masker: () => null,
  lineModel: () => null,
};

type EngineDecision = ReturnType<ResolvedPolicy['engine']['evaluateCommand']>;

function verdictOf(d: EngineDecision): CommandVerdict {
  return {
    action: d.action,
    rule: d.rule,
    reason: d.action === 'allow' ? null : d.reason,
    ...(d.kinds?.length ? { commands: d.kinds } : {}),
    ...(d.dynamic ? { dynamic: true } : {}),
    ...(d.incomplete ? { incomplete: true } : {}),
  };
}

function settingVerdict(d: { allowed: boolean; rule: string | null; reason: string | null }): CommandVerdict {
  return { action: d.allowed ? 'allow' : 'block', rule: d.rule, reason: d.reason };
}

/**
 * The SSH decisions of a session bound to `policy`: its compiled engine's command guardrails (exec
 * commands; shell lines with `interactive.unreliableLine`), file rules, and stream masker. The
 * engine never throws and fails closed; so does this. The async decisions analyse long texts off the
 * event loop (the core's CommandAnalysis).
 */
export function terminalPolicyOf(policy: ResolvedPolicy, maskingKey: Buffer, lib: PolicyLib, analysis: CommandAnalysis): TerminalPolicy {
  const engine = policy.engine;
  const settings = new lib.SshSettingsEvaluator(policy.document.ssh);
  const command = (text: string, opts?: { unseenInput?: boolean }): CommandVerdict => verdictOf(engine.evaluateCommand(text, { source: 'exec', ...(opts?.unseenInput ? { unseenInput: true } : {}) }));
  const line = (l: ShellLine): CommandVerdict => verdictOf(engine.evaluateCommand(l.text, { source: 'line', reliable: l.reliable, ...(l.reasons ? { reasons: l.reasons } : {}) }));
  const analysed = (text: string, req: CommandAnalysisRequest): Promise<CommandVerdict> => analysis.evaluate(policy, lib, text, req).then(verdictOf);
  return {
    name: policy.name,
    version: policy.version,
    command,
    line,
    commandAsync: (text, opts) => analysed(text, { source: 'exec', ...(opts?.unseenInput ? { unseenInput: true } : {}) }),
    lineAsync: (l) => analysed(l.text, { source: 'line', reliable: l.reliable, ...(l.reasons ? { reasons: l.reasons } : {}) }),
    file: (op: FileOp) => verdictOf(engine.evaluateFile(op)),
    filePathRules: policy.document.guardrails.some((g) => g.match.files !== undefined),
    env: (name, value) => settings.env(name, value),
    forward: (host, port) => settingVerdict(settings.forward(host, port)),
    remoteForward: (address, port) => settingVerdict(settings.remoteForward(address, port)),
    masker: () => engine.createStreamMasker({ hmacKey: maskingKey }),
    lineModel: () => new lib.LineEditorModel(),
  };
}

/** The module's options: tests replace the command classifier. */
export interface CommandPolicyOptions {
  /** replaces the SSH decisions of each session (tests of the transport without the classifier) */
  sshPolicy?: (policy: ResolvedPolicy | null) => TerminalPolicy;
}

/**
 * The command and file decisions of a session under `policy` (SSH sessions, Kubernetes exec). A policy
 * exists only when the library loaded (ConfigStore marks every policy broken otherwise).
 */
export function commandPolicyFor(core: SessionCore, o: CommandPolicyOptions): (policy: ResolvedPolicy | null) => TerminalPolicy {
  return (policy) => o.sshPolicy?.(policy) ?? (policy && core.policyLib ? terminalPolicyOf(policy, core.currentConfig()!.maskingKey, core.policyLib, core.commandAnalysis) : NO_POLICY);
}
