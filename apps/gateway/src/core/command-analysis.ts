import type { ResolvedPolicy } from '../config/config-store.js';
import type { PolicyLib } from './policy-lib.js';

type Engine = ResolvedPolicy['engine'];
/** the engine's decision on a shell text (SSH exec and shell lines, Kubernetes exec commands and exec -it lines) */
export type CommandAnalysisDecision = ReturnType<Engine['evaluateCommand']>;
export type CommandAnalysisRequest = NonNullable<Parameters<Engine['evaluateCommand']>[1]>;

/**
 * Shell texts up to this long are analysed on the event loop (a few milliseconds at most); longer ones
 * in the analysis worker: the parse and analysis cost tens of microseconds a byte, so a 16 KiB line of
 * many words is hundreds of milliseconds that would stall every session's relay.
 */
export const INLINE_ANALYSIS_CHARS = 1024;

/** The rule a refusal of the analysis itself carries (the same as @portcullis/policy's CommandAnalysisPool). */
const TOO_COMPLEX_RULE = 'command-too-complex';

/**
 * The gateway's shell-command analysis, for every protocol that decides shell texts (SSH, Kubernetes
 * exec): short texts on the event loop, long ones in one worker thread (@portcullis/policy
 * CommandAnalysisPool, started on the first long text, ended at gateway stop) so one client's
 * pathological lines cannot stall the relay of every other session. Fails closed: a text the worker
 * did not decide (too slow, too many queued, the worker failed) is blocked by rule
 * `command-too-complex` with a reason that says so.
 */
export class CommandAnalysis {
  private pool: InstanceType<PolicyLib['CommandAnalysisPool']> | null = null;
  private readonly keys = new WeakMap<object, string>();
  private documents = 0;
  private closed = false;

  constructor(private readonly opts: { timeoutMs?: number; maxQueued?: number } = {}) {}

  /** The decision on `text` under `policy`: inline when short, in the worker when long. Never rejects. */
  async evaluate(policy: ResolvedPolicy, lib: PolicyLib, text: string, req: CommandAnalysisRequest): Promise<CommandAnalysisDecision> {
    if (text.length <= INLINE_ANALYSIS_CHARS) return policy.engine.evaluateCommand(text, req);
    if (this.closed) return refusal('the gateway is stopping');
    try {
      this.pool ??= new lib.CommandAnalysisPool({
        ...(this.opts.timeoutMs !== undefined ? { timeoutMs: this.opts.timeoutMs } : {}),
        ...(this.opts.maxQueued !== undefined ? { maxQueued: this.opts.maxQueued } : {}),
      });
      return await this.pool.evaluate(this.documentKey(policy), policy.document, text, req);
    } catch (err) {
      return refusal(`the command could not be analysed (${(err as Error).message})`);
    }
  }

  /** Long texts the worker decided, and refused (too slow, queue full): `portcullis_gateway_command_analyses_total`, tests. */
  get counts(): { analysed: number; refused: number } {
    return { analysed: this.pool?.analysed ?? 0, refused: this.pool?.refused ?? 0 };
  }

  /** Ends the worker (gateway stop): texts still waiting are refused. */
  async close(): Promise<void> {
    this.closed = true;
    await this.pool?.close();
  }

  /** A key per document object: a new version (or a test's new document of the same name) is a new engine in the worker. */
  private documentKey(policy: ResolvedPolicy): string {
    let k = this.keys.get(policy.document);
    if (!k) {
      k = `${policy.name}@${policy.version}#${++this.documents}`;
      this.keys.set(policy.document, k);
    }
    return k;
  }
}

function refusal(reason: string): CommandAnalysisDecision {
  return { action: 'block', rule: TOO_COMPLEX_RULE, reason, kinds: [], cached: false } as unknown as CommandAnalysisDecision;
}
