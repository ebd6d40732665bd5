import type { ResolvedPolicy } from '../config/config-store.js';
import type { PolicyLib } from '../core/policy-lib.js';
import type { FileOp, ShellLine, SshPolicy, SshVerdict } from './ssh-policy.types.js';

/** Environment variables a session without a policy may set: sshd's stock AcceptEnv (@portcullis/policy DEFAULT_SSH_ENV). */
const DEFAULT_ENV = /^(LANG|LC_[A-Za-z0-9_]*|LANGUAGE|TZ)$/;
const MAX_ENV_VALUE = 4096;

const allow = (reason: string): SshVerdict => ({ action: 'allow', rule: null, reason });
const NO_FORWARD: SshVerdict = { action: 'block', rule: null, reason: 'port forwarding needs a policy that allows the destination (ssh.forwarding)' };

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

function verdictOf(d: EngineDecision): SshVerdict {
  return {
    action: d.action,
    rule: d.rule,
    reason: d.action === 'allow' ? null : d.reason,
    ...(d.kinds?.length ? { commands: d.kinds } : {}),
    ...(d.dynamic ? { dynamic: true } : {}),
    ...(d.incomplete ? { incomplete: true } : {}),
  };
}

/**
 * Shell texts up to this long are analysed on the event loop (a few milliseconds at most); longer ones
 * in the analysis worker: the parse and analysis cost tens of microseconds a byte, so a 16 KiB line of
 * many words is hundreds of milliseconds that would stall every session's relay.
 */
export const INLINE_ANALYSIS_CHARS = 1024;

let pool: InstanceType<PolicyLib['CommandAnalysisPool']> | null = null;
const keys = new WeakMap<object, string>();
let documents = 0;

/** The process's one analysis worker (started on the first long text). */
function analysisPool(lib: PolicyLib): InstanceType<PolicyLib['CommandAnalysisPool']> {
  pool ??= new lib.CommandAnalysisPool();
  return pool;
}

/** How many long texts the worker decided, and refused (metrics, tests). */
export function analysisCounts(): { analysed: number; refused: number } {
  return { analysed: pool?.analysed ?? 0, refused: pool?.refused ?? 0 };
}

/** A key per document object: a new version (or a test's new document of the same name) is a new engine in the worker. */
function documentKey(policy: ResolvedPolicy): string {
  let k = keys.get(policy.document);
  if (!k) {
    k = `${policy.name}@${policy.version}#${++documents}`;
    keys.set(policy.document, k);
  }
  return k;
}

function settingVerdict(d: { allowed: boolean; rule: string | null; reason: string | null }): SshVerdict {
  return { action: d.allowed ? 'allow' : 'block', rule: d.rule, reason: d.reason };
}

/**
 * The SSH decisions of a session bound to `policy`: its compiled engine's command guardrails (exec
 * commands; shell lines with `interactive.unreliableLine`), file rules, and stream masker. The
 * engine never throws and fails closed; so does this.
 */
export function sshPolicyOf(policy: ResolvedPolicy, maskingKey: Buffer, lib: PolicyLib): SshPolicy {
  const engine = policy.engine;
  const settings = new lib.SshSettingsEvaluator(policy.document.ssh);
  const command = (text: string, opts?: { unseenInput?: boolean }): SshVerdict => verdictOf(engine.evaluateCommand(text, { source: 'exec', ...(opts?.unseenInput ? { unseenInput: true } : {}) }));
  const line = (l: ShellLine): SshVerdict => verdictOf(engine.evaluateCommand(l.text, { source: 'line', reliable: l.reliable, ...(l.reasons ? { reasons: l.reasons } : {}) }));
  const offLoop = (text: string, req: Parameters<ResolvedPolicy['engine']['evaluateCommand']>[1]): Promise<SshVerdict> =>
    analysisPool(lib).evaluate(documentKey(policy), policy.document, text, req).then(verdictOf);
  return {
    name: policy.name,
    version: policy.version,
    command,
    line,
    commandAsync: async (text, opts) => (text.length <= INLINE_ANALYSIS_CHARS ? command(text, opts) : offLoop(text, { source: 'exec', ...(opts?.unseenInput ? { unseenInput: true } : {}) })),
    lineAsync: async (l) => (l.text.length <= INLINE_ANALYSIS_CHARS ? line(l) : offLoop(l.text, { source: 'line', reliable: l.reliable, ...(l.reasons ? { reasons: l.reasons } : {}) })),
    file: (op: FileOp) => verdictOf(engine.evaluateFile(op)),
    filePathRules: policy.document.guardrails.some((g) => g.match.files !== undefined),
    env: (name, value) => settings.env(name, value),
    forward: (host, port) => settingVerdict(settings.forward(host, port)),
    remoteForward: (address, port) => settingVerdict(settings.remoteForward(address, port)),
    masker: () => engine.createStreamMasker({ hmacKey: maskingKey }),
    lineModel: () => new lib.LineEditorModel(),
  };
}
