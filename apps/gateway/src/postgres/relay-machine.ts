import { randomBytes } from 'node:crypto';
import {
  BackendMessageType as B,
  DataRowView,
  DataRowWriter,
  FrontendMessageType as F,
  ProtocolError,
  decodeCommandComplete,
  decodeCopyOutResponse,
  decodeDescribe,
  decodeErrorResponse,
  decodeExecute,
  encodeClose,
  decodeFunctionCall,
  decodeNoticeResponse,
  decodeNotificationResponse,
  encodeNotificationResponse,
  decodeParameterStatus,
  decodeParse,
  decodeQuery,
  decodeRowDescription,
  encodeCopyData,
  encodeDescribe,
  encodeErrorResponse,
  encodeFunctionCallResponse,
  encodeNoticeResponse,
  encodeParameterStatus,
  encodeParse,
  encodeQuery,
  lexesAlikeUnderAnySettings,
  reportedLexingProblem,
  type PgFrame,
} from '@portcullis/protocol';
import type { ConsequenceInfo, FunctionCallDecision, RowMasker, RowPlan, SessionHooks, StatementInfo, Verdict } from './session-hooks.js';
import { ResultCapture, type ReturnedSet } from './result-capture.js';
import { UpstreamConversation, keep, maskedSample, measure, toleranceCheck, undo, type Answer, type MeasureHost } from './consequence.js';
import type { ConsequenceJudgement } from '@portcullis/policy';

/** Where the relay's output goes. The adapter owns the sockets; the machine only hands it bytes. */
export interface RelayOutput {
  toClient(buf: Buffer): void;
  toUpstream(buf: Buffer): void;
}

export type QueryEventData = { sql: string; protocol: StatementInfo['protocol']; statement?: string; portal?: string };
export type DecisionEventData = {
  action: string; rule: string | null; reason: string | null; kinds?: string[]; cached?: boolean; policyVersion?: number;
  /** a write measured by a consequence rule: the rows it changed and the approval it needed (consequence.ts) */
  measured?: MeasuredEventData;
};
export type MeasuredEventData = {
  rows: number; tables: string[]; rule: string | null; threshold: number | null; mode: 'tag' | 'stats';
  approvalId?: string; approvedRows?: number; error?: string;
};

/** A decision event's `measured`: the run's count and tables, the rule it checked, and the approval it ran under. */
function measuredEventData(j: ConsequenceJudgement, mode: MeasuredEventData['mode'], approved: { rows: number; approvalId?: string } | null): MeasuredEventData {
  const measured: MeasuredEventData = { rows: j.rows, tables: j.tables, rule: j.check?.rule ?? null, threshold: j.check?.over ?? null, mode };
  if (approved) {
    if (approved.approvalId) measured.approvalId = approved.approvalId;
    measured.approvedRows = approved.rows;
  }
  return measured;
}

/**
 * Session events the machine produces (the adapter signs and publishes them). `at` is the event's
 * time (ms since the epoch) when it is not now: a held statement is recorded with the time it was decided.
 */
export interface RelayEvents {
  query(data: QueryEventData, at?: number): void;
  decision(data: DecisionEventData, at?: number): void;
  result(data: ResultEventData): void;
  /** One simple-protocol statement's query, decision and result as one event (libs/protocol SESSION_EVENT_TYPES). */
  statement(query: QueryEventData, decision: DecisionEventData, result: ResultEventData, at: number): void;
  /** A statement's query and decision are now held (none were before): call releaseStarts() within a second. */
  holding?(): void;
}

/**
 * A simple-protocol statement's query and decision, held until its result so that the three travel
 * as one `statement` event: a third of the events the recorder has to chain. Released as separate
 * query/decision events when the statement is still running after a second (releaseStarts), before
 * any other event of the session (so the chain keeps the order statements were sent in), and at the
 * end of the session: a statement that reached the target is never missing from the record.
 */
interface HeldStart {
  query: QueryEventData;
  decision: DecisionEventData;
  at: number;
}

// a type, not an interface: it must fit the recorder's Record<string, unknown>
export type ResultEventData = {
  tag?: string;
  rows: number;
  durationMs: number;
  error?: { code: string; message: string };
  masking?: { columns: string[]; values: number };
  /** policy `recording.results`: the first rows the client received, as it received them (result-capture.ts) */
  returned?: ReturnedSet[];
};

export interface RelayCounters {
  decision(action: string): void;
  masked(values: number): void;
}

/** A statement the policy refused, as the client sees it. */
export interface Refusal {
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

/**
 * The server reported a setting under which it reads SQL differently from the gateway's parser
 * (lexing-settings.ts in libs/protocol). Every statement decided from then on could mean something
 * else to the server than to the policy: the adapter ends the session with this FATAL.
 */
export class LexingStateError extends Error {
  readonly sqlState = '0A000';
  readonly detail = 'The server reported the setting changed (by SET, set_config, an UPDATE of pg_settings, a function or another route); the gateway ends the session rather than read statements differently from the server.';
  constructor(message: string) {
    super(message);
    this.name = 'LexingStateError';
  }
}

/** Rule name in the decision event of a statement refused because the server's lexing state was not yet known. */
const LEXING_RULE = 'lexing';

/** Steps of the upstream → client direction (the client direction has no modes of its own). */
export const UpstreamStep = {
  /** Messages pass (rows masked when a plan is active). */
  Relay: 'relay',
  /** A result was refused: everything but notices is dropped until ReadyForQuery. */
  SkipUntilReady: 'skip-until-ready',
} as const;
export type UpstreamStep = (typeof UpstreamStep)[keyof typeof UpstreamStep];

/** Results waiting for their completion message, in upstream order. */
interface PendingResult {
  batch: number;
  kind: 'query' | 'execute';
  startedAt: number;
  rows: number;
  tag?: string;
  /** the Query's text (COPY TO STDOUT masking needs it) */
  sql?: string;
  error?: { code: string; message: string };
  maskedColumns?: Set<string>;
  maskedValues: number;
  /** a function call's result: how its one value is masked (as the same `SELECT fn(…)`'s column) */
  fnPlan?: RowPlan;
  /** its query and decision, not recorded yet */
  start?: HeldStart;
}

/**
 * A statement the gateway refused but still sent upstream as a placeholder that fails to parse, so
 * Postgres itself aborts the batch (skip-until-Sync, failed transaction block) exactly as it would
 * for a real error. The placeholder's ErrorResponse (recognised by the marker it echoes) is replaced
 * with the refusal.
 */
interface Substitution {
  batch: number;
  marker: Buffer;
  error: Buffer;
}

interface PendingDescribe {
  batch: number;
  target: 'statement' | 'portal';
  /** injected by the gateway to learn a portal's row layout: its answer is not relayed */
  injected: boolean;
}

const MAX_EVENT_SQL = 100_000;

/**
 * The relay phase of one Postgres session as a state machine with no I/O: it takes whole frames
 * from either side and says what to send where (through RelayOutput). Frames pass raw unless policy
 * needs them: Query and Parse are decoded for decisions; RowDescription/DataRow/CopyData only when
 * the session's policy masks results; CommandComplete/ErrorResponse for result events.
 *
 * `fromClient`/`fromUpstream` return a promise only when a hook answered asynchronously; the
 * adapter must not feed that direction again until it settles.
 */
export class RelayMachine {
  /** ReadyForQuery status of the upstream session ('I', 'T', 'E'). */
  txStatus = 'I';
  statements = 0;
  /**
   * Set once a named prepared statement (a named Parse, or SQL PREPARE) may exist upstream: its later
   * executions are not decided again, so a session holding one cannot adopt a new policy version in place.
   */
  preparedStatements = false;
  step: UpstreamStep = UpstreamStep.Relay;

  /** Sync/Query messages forwarded: the batch the next forwarded message belongs to. */
  private sentBatches = 0;
  /**
   * A Parse, Bind or Execute went upstream since the last Sync: it may run code (planning folds
   * functions, Bind checks domains) that changes a setting, and the server reports that only at
   * the next ReadyForQuery, which needs a Sync first.
   */
  private unsyncedWork = false;
  /** Client statements waiting for the server to report its settings (see whenSettingsKnown). */
  private settledWaiters: (() => void)[] = [];
  /** ReadyForQuery messages received: the batch upstream is answering now. */
  private doneBatches = 0;
  private pending: PendingResult[] = [];
  private substitutions: Substitution[] = [];
  private describes: PendingDescribe[] = [];
  /** Portal the client itself described since its last Bind/Execute (no need to inject one). */
  private describedPortal: string | null = null;
  /** Row plan for the rows flowing now, and whether a layout was seen for them at all. */
  private masker: RowMasker | null = null;
  private layoutKnown = false;
  private copyMasker: RowMasker | null = null;
  /** DataRows being masked are read and rewritten in place through these (made at the first masked row) */
  private rowView: DataRowView | null = null;
  private rowWriter: DataRowWriter | null = null;
  private rows = 0;
  /**
   * Batches whose statements read or write a masked column, by batch, with the rule: their error and
   * notice texts are withheld (a failing `ssn::int` quotes the value). Prepared statements (extended
   * protocol) carry it to the batches that bind them; SQL-level PREPARE and DECLARE to every later
   * EXECUTE / FETCH / MOVE of the session (which one they run is not tracked: fail closed).
   */
  private readonly maskedBatches = new Map<number, string>();
  private readonly maskedStatements = new Map<string, string>();
  private maskedDeferred: string | null = null;
  private readonly nonce = randomBytes(6).toString('hex');
  /** When set (ms since the epoch), the time of the frame being replayed (see replayed()) instead of now. */
  private at = 0;
  private markerSeq = 0;
  /**
   * Postgres skips every message after an extended-protocol error up to the next Sync — a Query
   * sent before that Sync too, which then gets no ReadyForQuery. A Query sent while extended
   * messages are unsynced is preceded by a probe (a Close of a statement that never exists: a
   * CloseComplete, never an error) whose answer says the Query will run; no answer before an error
   * says the error was the extended messages' and the batches up to the next Sync are skipped.
   */
  private openExtended = false;
  /** the client's Close messages in the current batch (their CloseCompletes come before the probe's) */
  private closesSent = 0;
  /** batch → its probe: the client's Closes before it, CloseCompletes seen, whether it was answered */
  private probes = new Map<number, { closes: number; seen: number; answered: boolean }>();
  /** batches ended by a Sync, in order */
  private syncBatches: number[] = [];
  /** upstream skips everything until the next Sync (an extended message failed) */
  private ignoringUntilSync = false;
  private readonly probeName = `portcullis_probe_${randomBytes(6).toString('hex')}`;
  /** the session's upstream backend pid and the pid the gateway gave its client (BackendKeyData) */
  private pids: { upstream: number; client: number } | null = null;
  /** pending results holding their statement's start */
  private held = 0;
  /** keeps the first rows of each result for its event (policy recording.results); null: counts only */
  private readonly capture: ResultCapture | null;

  /** the gateway's own exchange with upstream while it measures a write (consequence.ts) */
  private readonly conversation = new UpstreamConversation();

  constructor(
    private readonly hooks: SessionHooks,
    private out: RelayOutput,
    private readonly events: RelayEvents,
    private readonly counters: RelayCounters,
    /** what the client sees as session_authorization (never the target's user) */
    private readonly clientUser: string,
  ) {
    this.capture = hooks.recordResults ? new ResultCapture(hooks.recordResults) : null;
  }

  private now(): number {
    return this.at || Date.now();
  }

  /**
   * Bookkeeping for a frame that was already forwarded by someone else (the fast lane), at time `at`:
   * the same state changes and events as fromClient/fromUpstream, with the output the caller mutes.
   * Only frames the relay would forward untouched in a session that masks nothing may come here.
   */
  replayed(side: 'client' | 'upstream', f: PgFrame, at: number): void {
    this.at = at;
    try {
      if (side === 'client') void this.fromClient(f);
      else void this.fromUpstream(f);
    } finally {
      this.at = 0;
    }
  }

  /** `n` DataRows already forwarded by someone else (the fast lane). */
  replayedRows(n: number): void {
    if (this.step !== UpstreamStep.SkipUntilReady) this.rows += n;
  }

  /**
   * The client knows its backend by the gateway's pid (BackendKeyData): a NotificationResponse from
   * the session's own upstream backend is relabelled with it, so a client that skips its own
   * notifications (pid equal to its BackendKeyData's) still does.
   */
  setBackendPids(upstream: number, client: number): void {
    this.pids = { upstream, client };
  }

  /** True when no statement is in flight upstream. */
  get idle(): boolean {
    return this.sentBatches === this.doneBatches;
  }

  // -------------------------------------------------------------------------------------------
  // client → upstream

  fromClient(f: PgFrame): void | Promise<void> {
    if (this.heldBatch) return this.holdFrame(f);
    const t = f.type;
    if (t === F.Parse || t === F.Bind || t === F.Describe || t === F.Execute || t === F.Close || t === F.Flush) {
      this.openExtended = true;
      if (t === F.Close) this.closesSent++;
    }
    switch (f.type) {
      case F.Query: {
        const { sql } = decodeQuery(f.payload);
        const stmt: StatementInfo = { sql, protocol: 'simple' };
        if (!this.settingsKnown && !lexesAlikeUnderAnySettings(sql)) return this.whenSettingsKnown(stmt, f, 'query', '');
        return this.decide(stmt, this.hooks.onQuery(stmt), f, 'query');
      }
      case F.Parse: {
        const p = decodeParse(f.payload);
        const stmt: StatementInfo = { sql: p.query, protocol: 'extended', statement: p.name };
        if (!this.settingsKnown && !lexesAlikeUnderAnySettings(p.query)) return this.whenSettingsKnown(stmt, f, 'parse', p.name);
        return this.decide(stmt, this.hooks.onParse(stmt), f, 'parse', p.name);
      }
      case F.Bind:
        if (this.measuredStatements.size > 0 && !this.measuring) {
          const m = this.measuredStatements.get(boundStatement(f.payload));
          if (m) return this.startHeldBatch(m, f);
        }
        this.describedPortal = null;
        if (this.maskedStatements.size > 0) {
          const rule = this.maskedStatements.get(boundStatement(f.payload));
          if (rule !== undefined) this.markMasked(this.sentBatches, rule);
        }
        this.unsyncedWork = true;
        this.out.toUpstream(f.frame);
        return;
      case F.Describe:
        if (this.hooks.masksResults) {
          const d = decodeDescribe(f.payload);
          this.describes.push({ batch: this.sentBatches, target: d.target, injected: false });
          if (d.target === 'portal') this.describedPortal = d.name;
        }
        this.out.toUpstream(f.frame);
        return;
      case F.Execute: {
        if (this.hooks.masksResults) {
          // The rows of an Execute must be masked by their real layout (formats come from Bind):
          // ask for it unless the client just did.
          const { portal } = decodeExecute(f.payload);
          if (this.describedPortal !== portal) {
            this.describes.push({ batch: this.sentBatches, target: 'portal', injected: true });
            this.out.toUpstream(encodeDescribe('portal', portal));
          }
          this.describedPortal = null;
        }
        this.pending.push({ batch: this.sentBatches, kind: 'execute', startedAt: this.now(), rows: 0, maskedValues: 0 });
        this.unsyncedWork = true;
        this.out.toUpstream(f.frame);
        return;
      }
      case F.Sync:
        this.syncBatches.push(this.sentBatches);
        this.batchSent();
        this.out.toUpstream(f.frame);
        return;
      case F.FunctionCall: {
        // The fast-path call names a function by OID: decided as the `SELECT schema.fn($1, …)` it
        // amounts to (the hooks resolve the OID), so the policy's function guardrails apply to it.
        const call = decodeFunctionCall(f.payload);
        const info = { oid: call.functionOid, args: call.args.length, resultFormat: call.resultFormat };
        const d = this.hooks.onFunctionCall ? this.hooks.onFunctionCall(info) : noFunctionCalls(info.oid);
        if (d instanceof Promise) return d.then((x) => this.applyFunctionCall(x, f));
        return this.applyFunctionCall(d, f);
      }
      case F.Close:
      case F.Flush:
      case F.CopyData:
      case F.CopyDone:
      case F.CopyFail:
      case F.Terminate:
      case F.Password:
        this.out.toUpstream(f.frame);
        return;
      default:
        throw new ProtocolError('unknown_message', `invalid frontend message type ${f.type}`);
    }
  }

  private applyFunctionCall(d: FunctionCallDecision, f: PgFrame): void | Promise<void> {
    const stmt: StatementInfo = { sql: d.sql, protocol: 'function-call' };
    if (d.refusal) {
      // the call cannot be decided at all (an OID that names no function): nothing runs
      this.statements++;
      this.releaseStarts(Infinity);
      this.events.query({ sql: d.sql, protocol: 'function-call' });
      this.events.decision({ action: 'block', rule: null, reason: d.refusal.message });
      this.counters.decision('block');
      this.refuse('query', '', d.refusal);
      return;
    }
    return this.applyVerdict(stmt, d.verdict, f, 'query', '', d.plan ?? null);
  }

  /**
   * True when the server's lexing settings are known for the next statement: everything sent has
   * been answered up to ReadyForQuery, before which Postgres reports any setting that changed.
   * Otherwise a statement pipelined behind one that changed standard_conforming_strings or
   * client_encoding (by SET, set_config, a pg_settings UPDATE, a function, a trigger...) would be
   * read by the server under the new setting before the gateway hears of it.
   */
  private get settingsKnown(): boolean {
    return !this.unsyncedWork && this.sentBatches === this.doneBatches;
  }

  private batchSent(): void {
    this.sentBatches++;
    this.unsyncedWork = false;
    this.openExtended = false;
    this.closesSent = 0;
  }

  /**
   * A statement that the server might lex differently from the gateway if a setting changed in
   * what is still in flight. After a Sync (or a Query) it waits for the server's answer, whose
   * ParameterStatus messages say (the adapter reads no further client messages meanwhile); inside
   * an unsynced batch no answer comes before the client's Sync, so it is refused.
   */
  private whenSettingsKnown(stmt: StatementInfo, f: PgFrame, kind: 'query' | 'parse', name: string): void | Promise<void> {
    if (this.unsyncedWork) {
      return this.applyVerdict(stmt, {
        action: 'block',
        rule: LEXING_RULE,
        reason:
          'it follows a statement of the same pipeline that may change how the server reads SQL, and has backslashes or non-ASCII characters the gateway cannot be sure the server reads as it does: send Sync before it',
      }, f, kind, name);
    }
    return new Promise<void>((resolve) => this.settledWaiters.push(resolve)).then(() =>
      kind === 'query' ? this.decide(stmt, this.hooks.onQuery(stmt), f, kind) : this.decide(stmt, this.hooks.onParse(stmt), f, kind, name),
    );
  }

  private decide(stmt: StatementInfo, verdict: Verdict | Promise<Verdict>, f: PgFrame, kind: 'query' | 'parse', name = ''): void | Promise<void> {
    if (verdict instanceof Promise) return verdict.then((v) => this.applyVerdict(stmt, v, f, kind, name));
    return this.applyVerdict(stmt, verdict, f, kind, name);
  }

  private applyVerdict(stmt: StatementInfo, v: Verdict, f: PgFrame, kind: 'query' | 'parse', name: string, fnPlan?: RowPlan): void | Promise<void> {
    this.statements++;
    // Built member by member (no spreads): this runs for every statement.
    const query: QueryEventData = { sql: stmt.sql.length > MAX_EVENT_SQL ? `${stmt.sql.slice(0, MAX_EVENT_SQL)}…` : stmt.sql, protocol: stmt.protocol };
    if (stmt.statement !== undefined) query.statement = stmt.statement;
    const decision: DecisionEventData = { action: v.action, rule: v.rule, reason: v.reason };
    if (v.kinds) decision.kinds = v.kinds;
    if (v.cached !== undefined) decision.cached = v.cached;
    if (v.policyVersion !== undefined) decision.policyVersion = v.policyVersion;
    if (v.measure && v.action !== 'block' && kind === 'query' && stmt.protocol === 'simple') {
      this.counters.decision(v.action);
      if (v.kinds?.includes('PREPARE')) this.preparedStatements = true;
      this.noteMaskedStatement(v, kind, name);
      return this.measuredQuery(stmt, v, f, query, decision);
    }
    // A simple Query (or a function call) that runs or is refused travels with its result; a Parse (its
    // executions come later, maybe many) and a statement held for approval are recorded at once.
    let start: HeldStart | undefined;
    if (kind === 'query' && v.action !== 'require_approval') start = { query, decision, at: this.now() };
    else {
      this.releaseStarts(Infinity);
      this.events.query(query);
      this.events.decision(decision);
    }
    this.counters.decision(v.action);
    if (v.action !== 'block' && ((kind === 'parse' && name !== '') || v.kinds?.includes('PREPARE'))) this.preparedStatements = true;
    if (v.action !== 'block') this.noteMaskedStatement(v, kind, name);
    if (kind === 'parse' && this.measuredStatements.size > 0) this.measuredStatements.delete(name);
    if (v.measure && v.action === 'allow' && kind === 'parse' && this.hooks.consequence && !this.measuring) {
      const m = { stmt, v, parse: f };
      this.measuredStatements.set(name, m);
      return this.startHeldBatch(m, f);
    }
    if (v.action === 'allow') return this.forwardStatement(f, kind, stmt, fnPlan, start);
    if (v.action === 'require_approval') {
      if (!this.hooks.onApprovalRequired) {
        return this.refuse(kind, name, {
          code: '42501',
          message: `statement requires approval by rule "${v.rule ?? 'unnamed'}"${v.reason ? `: ${v.reason}` : ''}`,
          detail: 'Approvals are not available on this gateway; the statement was not run.',
        });
      }
      return this.hooks.onApprovalRequired(stmt, v).then(
        (o) => {
          if (o.approved) return this.forwardStatement(f, kind, stmt, fnPlan);
          return this.refuse(kind, name, { code: o.code ?? '42501', message: o.message, ...(o.detail ? { detail: o.detail } : {}) });
        },
        () => this.refuse(kind, name, { code: '42501', message: `statement requires approval by rule "${v.rule ?? 'unnamed'}" and the approval could not be obtained` }),
      );
    }
    return this.refuse(kind, name, {
      code: v.sqlstate ?? '42501',
      message: `statement blocked by rule "${v.rule ?? 'unnamed'}"${v.reason ? `: ${v.reason}` : ''}`,
    }, start);
  }

  // -------------------------------------------------------------------------------------------
  // writes measured by consequence rules (the conversation itself is in consequence.ts)

  /**
   * A simple Query that consequence rules measure: run inside a savepoint with nothing else in
   * flight; it stands when under every threshold (the client gets the run's own answers: it ran
   * once), else it is undone and held for approval (with the count and a masked sample) or refused.
   * An approved write runs again and is held again when its count moved beyond the rule's tolerance.
   */
  private async measuredQuery(stmt: StatementInfo, v: Verdict, f: PgFrame, query: QueryEventData, decision: DecisionEventData): Promise<void> {
    const helpers = this.hooks.consequence;
    const plan = v.measure!;
    if (!helpers || this.unsyncedWork) {
      const message = !helpers
        ? 'statement refused: a consequence rule needs the write measured and this session cannot measure it'
        : 'statement refused: a write measured by a consequence rule cannot follow unsynced extended-protocol messages; send Sync first';
      this.releaseStarts(Infinity);
      this.events.query(query);
      this.events.decision({ ...decision, action: 'block', reason: message });
      return this.refuse('query', '', { code: '42501', message });
    }
    if (!this.settingsKnown) await new Promise<void>((resolve) => this.settledWaiters.push(resolve));
    if (this.txStatus === 'E') {
      // an aborted transaction runs nothing: the statement fails as it would anyway
      return this.forwardStatement(f, 'query', stmt, undefined, { query, decision, at: this.now() });
    }
    const host: MeasureHost = {
      txStatus: this.txStatus,
      toUpstream: (b) => this.out.toUpstream(b),
      conversation: this.conversation,
      helpers,
      savepoint: `portcullis_measure_${this.nonce}`,
    };
    let approved: { rows: number; approvalId?: string } | null = null;
    for (;;) {
      const snap = { pending: this.pending.length, sentBatches: this.sentBatches };
      const bytes = this.captureUpstream(() => this.forwardStatement(f, 'query', stmt));
      const run = await measure(host, plan, bytes, 1);
      const j = run.judgement;
      const measured = measuredEventData(j, plan.mode, approved);
      if (run.client.overflow) {
        await undo(host, run, null);
        this.restoreBatch(snap);
        const message = 'statement refused: its results were too large to hold while the gateway measured the rows it changes';
        this.events.query(query);
        this.events.decision({ ...decision, action: 'block', reason: message, measured });
        return this.refuse('query', '', { code: '54000', message });
      }
      if (run.client.error) {
        // the client gets the error as if unmeasured; a transaction the gateway opened is closed again
        if (run.opened) await undo(host, run, null);
        measured.error = run.client.error.code;
        return this.replayRun(run.client, run.opened ? 'I' : null, null, { query, decision: { ...decision, measured }, at: this.now() });
      }
      const hold = j.check !== null || v.action === 'require_approval';
      const stands = !hold || (approved !== null && helpers.withinTolerance(toleranceCheck(plan, j), approved.rows, j.rows));
      if (stands) {
        const failed = await keep(host, run);
        return this.replayRun(run.client, run.opened ? 'I' : null, failed, approved ? null : { query, decision: { ...decision, measured }, at: this.now() });
      }
      const check = toleranceCheck(plan, j);
      const sampleSql = plan.mode === 'tag' ? helpers.sampleQuery(stmt.sql, check.sampleRows) : null;
      const sampleAnswer = await undo(host, run, sampleSql);
      this.restoreBatch(snap);
      const note = check.sampleRows === 0 ? null : sampleSql === null ? 'no sample: only a single INSERT, UPDATE or DELETE can show the rows it changes' : null;
      const sample = await maskedSample(this.hooks, sampleAnswer, note);
      const info: ConsequenceInfo = { rowsAffected: j.rows, threshold: j.check?.over ?? null, rule: j.check?.rule ?? v.rule, tables: j.tables, sample };
      if (approved) info.previouslyApproved = approved.rows;
      const what = `${describeRows(j.rows, j.tables)}${j.check ? ` (over ${j.check.over}, rule ${j.check.rule})` : ''}`;
      this.releaseStarts(Infinity);
      this.events.query(query);
      if (j.check?.action === 'block') {
        const message = `statement blocked by rule "${j.check.rule}": ${j.check.reason ?? `it would change ${what}`}`;
        this.events.decision({ ...decision, action: 'block', rule: j.check.rule, reason: message, measured });
        this.counters.decision('block');
        return this.refuse('query', '', { code: '42501', message, detail: 'The write was measured inside a savepoint and rolled back; nothing was changed.' });
      }
      const rule = j.check?.rule ?? v.rule;
      const reason = j.check
        ? j.check.reason ?? `would change ${what}${approved ? `; ${approved.rows} were approved` : ''}`
        : `${v.reason ?? ''} (would change ${describeRows(j.rows, j.tables)})`;
      this.events.decision({ ...decision, action: 'require_approval', rule, reason, measured });
      if (!this.hooks.onApprovalRequired) {
        return this.refuse('query', '', { code: '42501', message: `statement requires approval by rule "${rule ?? 'unnamed'}": ${reason}`, detail: 'Approvals are not available on this gateway; the statement was not run.' });
      }
      let o: Awaited<ReturnType<NonNullable<SessionHooks['onApprovalRequired']>>>;
      try {
        o = await this.hooks.onApprovalRequired(stmt, { ...v, action: 'require_approval', rule, reason, consequence: info });
      } catch {
        return this.refuse('query', '', { code: '42501', message: `statement requires approval by rule "${rule ?? 'unnamed'}" and the approval could not be obtained` });
      }
      if (!o.approved) {
        return this.refuse('query', '', { code: o.code ?? '42501', message: `${o.message} (the write would change ${what})`, ...(o.detail ? { detail: o.detail } : {}) });
      }
      approved = { rows: j.rows, ...(o.approvalId ? { approvalId: o.approvalId } : {}) };
    }
  }

  /**
   * Extended protocol: from the Parse (or the Bind) of a statement consequence rules measure up to
   * the client's Sync, the batch is held; at the Sync it runs measured as one piece (measuredBatch).
   */
  private heldBatch: PgFrame[] | null = null;
  private heldFor: { stmt: StatementInfo; v: Verdict; parse: PgFrame } | null = null;
  private heldBytes = 0;
  private measuring = false;
  /** prepared statements (by name) whose executions are measured */
  private readonly measuredStatements = new Map<string, { stmt: StatementInfo; v: Verdict; parse: PgFrame }>();

  private startHeldBatch(m: { stmt: StatementInfo; v: Verdict; parse: PgFrame }, f: PgFrame): void {
    this.heldBatch = [];
    this.heldFor = m;
    this.heldBytes = 0;
    this.holdFrame(f);
  }

  private holdFrame(f: PgFrame): void | Promise<void> {
    // a Flush inside the held batch is answered when the batch runs (at its Sync)
    if (f.type !== F.Flush) {
      this.heldBatch!.push(copyFrame(f));
      this.heldBytes += f.frame.length;
    }
    if (f.type !== F.Sync) {
      if (this.heldBytes <= MAX_HELD_BATCH_BYTES) return;
    }
    const frames = this.heldBatch!;
    const m = this.heldFor!;
    this.heldBatch = null;
    this.heldFor = null;
    if (f.type !== F.Sync) {
      return this.refuseBatch(frames, { code: '54000', message: 'statement refused: a batch with a write measured by a consequence rule grew too large before its Sync' }, false);
    }
    return this.measuredBatch(m, frames);
  }

  /** A held batch refused: a placeholder Parse fails upstream (the rest is skipped to the Sync), the client gets `r`. */
  private refuseBatch(frames: PgFrame[], r: Refusal, synced = true): void {
    this.events.result({ rows: 0, durationMs: 0, error: { code: r.code, message: r.message } });
    this.substituteParse(`portcullis_refused_${this.nonce}_${++this.markerSeq}`, r);
    this.unsyncedWork = true;
    if (synced) this.fromClient(frames[frames.length - 1]);
  }

  /** Runs a held extended-protocol batch measured, as measuredQuery does a Query. */
  private async measuredBatch(m: { stmt: StatementInfo; v: Verdict; parse: PgFrame }, frames: PgFrame[]): Promise<void> {
    const helpers = this.hooks.consequence!;
    const plan = m.v.measure!;
    if (this.unsyncedWork) {
      return this.refuseBatch(frames, { code: '42501', message: 'statement refused: a write measured by a consequence rule must begin its own batch (send Sync before its Parse or Bind)' });
    }
    if (!this.settingsKnown) await new Promise<void>((resolve) => this.settledWaiters.push(resolve));
    const replay = () => {
      this.measuring = true;
      try {
        for (const fr of frames) {
          // the held Parse was decided when it came: it only goes upstream now
          if (fr === frames[0] && fr.type === F.Parse) this.forwardStatement(fr, 'parse', m.stmt);
          else void this.fromClient(fr);
        }
      } finally {
        this.measuring = false;
      }
    };
    if (this.txStatus === 'E') return replay();
    const host: MeasureHost = { txStatus: this.txStatus, toUpstream: (b) => this.out.toUpstream(b), conversation: this.conversation, helpers, savepoint: `portcullis_measure_${this.nonce}` };
    let approved: { rows: number; approvalId?: string } | null = null;
    const decision: DecisionEventData = { action: m.v.action, rule: m.v.rule, reason: m.v.reason };
    for (;;) {
      const snap = { pending: this.pending.length, sentBatches: this.sentBatches, describes: this.describes.length, syncBatches: this.syncBatches.length };
      const bytes = this.captureUpstream(replay);
      const run = await measure(host, plan, bytes, 1);
      const j = run.judgement;
      const measured = measuredEventData(j, plan.mode, approved);
      const restore = () => {
        this.pending.length = snap.pending;
        this.sentBatches = snap.sentBatches;
        this.describes.length = snap.describes;
        this.syncBatches.length = snap.syncBatches;
        this.unsyncedWork = false;
        this.openExtended = false;
      };
      if (run.client.overflow) {
        await undo(host, run, null);
        restore();
        this.events.decision({ ...decision, action: 'block', reason: 'results too large to hold while measuring', measured });
        return this.refuseBatch(frames, { code: '54000', message: 'statement refused: its results were too large to hold while the gateway measured the rows it changes' });
      }
      if (run.client.error) {
        if (run.opened) await undo(host, run, null);
        measured.error = run.client.error.code;
        this.events.decision({ ...decision, measured });
        return this.replayBatch(run.client, run.opened ? 'I' : null, null);
      }
      const hold = j.check !== null;
      const stands = !hold || (approved !== null && helpers.withinTolerance(toleranceCheck(plan, j), approved.rows, j.rows));
      if (stands) {
        const failed = await keep(host, run);
        this.events.decision({ ...decision, measured });
        return this.replayBatch(run.client, run.opened ? 'I' : null, failed);
      }
      const check = toleranceCheck(plan, j);
      await undo(host, run, null);
      restore();
      const info: ConsequenceInfo = {
        rowsAffected: j.rows, threshold: j.check?.over ?? null, rule: j.check?.rule ?? m.v.rule, tables: j.tables,
        sample: check.sampleRows > 0 ? { columns: [], rows: [], note: 'no sample: the statement came with bound parameters (extended protocol)' } : null,
      };
      if (approved) info.previouslyApproved = approved.rows;
      const what = `${describeRows(j.rows, j.tables)}${j.check ? ` (over ${j.check.over}, rule ${j.check.rule})` : ''}`;
      if (j.check!.action === 'block') {
        const message = `statement blocked by rule "${j.check!.rule}": ${j.check!.reason ?? `it would change ${what}`}`;
        this.events.decision({ ...decision, action: 'block', rule: j.check!.rule, reason: message, measured });
        this.counters.decision('block');
        return this.refuseBatch(frames, { code: '42501', message, detail: 'The write was measured inside a savepoint and rolled back; nothing was changed.' });
      }
      const rule = j.check!.rule;
      const reason = j.check!.reason ?? `would change ${what}${approved ? `; ${approved.rows} were approved` : ''}`;
      this.events.decision({ ...decision, action: 'require_approval', rule, reason, measured });
      if (!this.hooks.onApprovalRequired) {
        return this.refuseBatch(frames, { code: '42501', message: `statement requires approval by rule "${rule}": ${reason}`, detail: 'Approvals are not available on this gateway; the statement was not run.' });
      }
      let o: Awaited<ReturnType<NonNullable<SessionHooks['onApprovalRequired']>>>;
      try {
        o = await this.hooks.onApprovalRequired(m.stmt, { ...m.v, action: 'require_approval', rule, reason, consequence: info });
      } catch {
        return this.refuseBatch(frames, { code: '42501', message: `statement requires approval by rule "${rule}" and the approval could not be obtained` });
      }
      if (!o.approved) {
        return this.refuseBatch(frames, { code: o.code ?? '42501', message: `${o.message} (the write would change ${what})`, ...(o.detail ? { detail: o.detail } : {}) });
      }
      approved = { rows: j.rows, ...(o.approvalId ? { approvalId: o.approvalId } : {}) };
    }
  }

  /** A measured batch's answers to the client through the ordinary path (see replayRun). */
  private replayBatch(a: Answer, status: string | null, failed: { frame: PgFrame | null } | null): Promise<void> {
    return this.replayAnswer(a, status, failed, [B.DataRow, B.CommandComplete]);
  }

  /** What `fn` sends upstream, with the relay's bookkeeping done, instead of sending it. */
  private captureUpstream(fn: () => void): Buffer {
    const out = this.out;
    const parts: Buffer[] = [];
    this.out = { toClient: (b) => out.toClient(b), toUpstream: (b) => parts.push(Buffer.from(b)) };
    try {
      fn();
    } finally {
      this.out = out;
    }
    return Buffer.concat(parts);
  }

  /** Forgets a captured statement that was undone (it never reached the client). */
  private restoreBatch(snap: { pending: number; sentBatches: number }): void {
    this.pending.length = snap.pending;
    this.sentBatches = snap.sentBatches;
  }

  /**
   * The measured run's answers, to the client through the ordinary path (masking, events), as if it
   * had run unmeasured: ReadyForQuery with `status` when the gateway's transaction changed it, and a
   * failed COMMIT's error in place of the result.
   */
  private async replayRun(a: Answer, status: string | null, failed: { frame: PgFrame | null } | null, start: HeldStart | null): Promise<void> {
    const p = this.pending[this.pending.length - 1];
    if (start && p && p.kind === 'query' && !p.start) {
      p.start = start;
      if (this.held++ === 0) this.events.holding?.();
    }
    await this.replayAnswer(a, status, failed, [B.RowDescription, B.DataRow, B.CommandComplete]);
  }

  /**
   * Replays `a` through fromUpstream: its frames (without those of type `droppedOnFailure` when the
   * gateway's COMMIT failed, whose error then stands in for the result), and its ReadyForQuery with
   * `status` when the gateway's own transaction changed it ('I' after a failed COMMIT).
   */
  private async replayAnswer(a: Answer, status: string | null, failed: { frame: PgFrame | null } | null, droppedOnFailure: readonly number[]): Promise<void> {
    for (const fr of a.frames) {
      if (failed && droppedOnFailure.includes(fr.type)) continue;
      const r = this.fromUpstream(fr);
      if (r) await r;
    }
    if (failed?.frame) {
      const r = this.fromUpstream(failed.frame);
      if (r) await r;
    }
    let ready = a.readyFrame!;
    if (status !== null && failed) status = 'I';
    if (status !== null) {
      const frame = Buffer.from([0x5a, 0, 0, 0, 5, status.charCodeAt(0)]);
      ready = { type: B.ReadyForQuery, frame, payload: frame.subarray(5) };
    }
    const r = this.fromUpstream(ready);
    if (r) await r;
  }

  /** Where the texts of a statement about to run must be withheld (see maskedBatches). */
  private noteMaskedStatement(v: Verdict, kind: 'query' | 'parse', name: string): void {
    let rule = v.masked ?? null;
    const kinds = v.kinds ?? [];
    if (rule !== null && (kinds.includes('PREPARE') || kinds.includes('DECLARE'))) this.maskedDeferred ??= rule;
    if (rule === null && this.maskedDeferred !== null && (kinds.includes('EXECUTE') || kinds.includes('FETCH') || kinds.includes('MOVE'))) rule = this.maskedDeferred;
    if (kind === 'parse') {
      if (rule !== null) this.maskedStatements.set(name, rule);
      else if (this.maskedStatements.size > 0) this.maskedStatements.delete(name);
    }
    if (rule !== null) this.markMasked(this.sentBatches, rule);
  }

  private markMasked(batch: number, rule: string): void {
    if (!this.maskedBatches.has(batch)) this.maskedBatches.set(batch, rule);
  }

  /**
   * An ErrorResponse / NoticeResponse of the batch upstream is answering, as the client may see it:
   * the same frame when nothing in it changes. A message that cannot be re-encoded is replaced whole.
   */
  private scrubbed(f: PgFrame, notice: boolean): { frame: Buffer; message: string | null } {
    const scrub = this.hooks.scrubServerMessage;
    if (!scrub || !this.hooks.masksResults) return { frame: f.frame, message: null };
    const rule = this.maskedBatches.get(this.doneBatches) ?? null;
    try {
      const n = notice ? decodeNoticeResponse(f.payload) : decodeErrorResponse(f.payload);
      const fields = scrub(n.fields, rule);
      if (!fields) return { frame: f.frame, message: null };
      const { S, V, C, M, ...rest } = fields;
      const input = { severity: S ?? n.severity, severityNonLocalized: V ?? S ?? n.severity, code: C ?? n.code, message: M ?? '', fields: rest };
      return { frame: notice ? encodeNoticeResponse(input) : encodeErrorResponse(input), message: input.message };
    } catch {
      const message = 'the server sent a message the gateway could not check; its text was withheld';
      if (notice) return { frame: encodeNoticeResponse({ severity: 'NOTICE', code: '01000', message }), message };
      return { frame: encodeErrorResponse({ severity: isFatal(f) ? 'FATAL' : 'ERROR', code: 'XX000', message }), message };
    }
  }

  /**
   * A NotificationResponse's payload leaves through masking like a notice's text: a trigger or rule
   * (`pg_notify('c', NEW.ssn)`) can put a value there. Withheld whole when it arrives while a statement
   * that touches a masked column is answered (its own triggers fire then); the detectors otherwise.
   */
  private scrubbedNotification(f: PgFrame): Buffer {
    const scrub = this.hooks.scrubServerMessage;
    if (!scrub || !this.hooks.masksResults) return f.frame;
    const rule = this.maskedBatches.get(this.doneBatches) ?? null;
    try {
      const n = decodeNotificationResponse(f.payload);
      if (rule !== null) return encodeNotificationResponse({ ...n, payload: `notification payload withheld: the statement reads or writes a column masked by rule "${rule}"` });
      const fields = scrub({ M: n.payload }, null);
      return fields ? encodeNotificationResponse({ ...n, payload: fields.M ?? '' }) : f.frame;
    } catch {
      return encodeNotificationResponse({ pid: 0, channel: '', payload: 'notification withheld: the gateway could not check it' });
    }
  }

  private forwardStatement(f: PgFrame, kind: 'query' | 'parse', stmt: StatementInfo, fnPlan?: RowPlan, start?: HeldStart): void {
    if (kind === 'query') {
      // a Query, or a FunctionCall (answered like one: its result or an error, then ReadyForQuery)
      const p: PendingResult = { batch: this.sentBatches, kind: 'query', startedAt: this.now(), rows: 0, maskedValues: 0, sql: stmt.sql };
      if (fnPlan !== undefined) p.fnPlan = fnPlan;
      if (start) {
        p.start = start;
        if (this.held++ === 0) this.events.holding?.();
      }
      this.pending.push(p);
      this.probeBeforeQuery();
      this.batchSent();
    } else {
      this.unsyncedWork = true;
    }
    this.out.toUpstream(f.frame);
  }

  /** Before a Query (or FunctionCall) that follows unsynced extended messages: the probe (see openExtended). */
  private probeBeforeQuery(): void {
    if (!this.openExtended) return;
    this.probes.set(this.sentBatches, { closes: this.closesSent, seen: 0, answered: false });
    this.out.toUpstream(encodeClose('statement', this.probeName));
  }

  /**
   * Records the held query/decision of statements decided at or before `decidedBy` (ms; Infinity:
   * all) that are still running, as separate events. Returns how many are still held.
   */
  releaseStarts(decidedBy: number): number {
    if (this.held === 0) return 0;
    for (const p of this.pending) if (p.start && p.start.at <= decidedBy) this.release(p);
    return this.held;
  }

  private release(p: PendingResult): void {
    const s = p.start;
    if (!s) return;
    p.start = undefined;
    this.held--;
    this.events.query(s.query, s.at);
    this.events.decision(s.decision, s.at);
  }

  private refuse(kind: 'query' | 'parse', name: string, r: Refusal, start?: HeldStart): void {
    const result: ResultEventData = { rows: 0, durationMs: 0, error: { code: r.code, message: r.message } };
    if (start) this.events.statement(start.query, start.decision, result, start.at);
    else this.events.result(result);
    if (kind === 'query') this.substituteQuery(r);
    else this.substituteParse(name, r);
  }

  private marker(): string {
    return `portcullis_refused_${this.nonce}_${++this.markerSeq}`;
  }

  private errorFrame(r: Refusal): Buffer {
    return encodeErrorResponse({ severity: 'ERROR', code: r.code, message: r.message, ...(r.detail ? { detail: r.detail } : {}), ...(r.hint ? { hint: r.hint } : {}) });
  }

  private substituteQuery(r: Refusal): void {
    const m = this.marker();
    this.substitutions.push({ batch: this.sentBatches, marker: Buffer.from(m), error: this.errorFrame(r) });
    this.probeBeforeQuery();
    this.batchSent();
    this.out.toUpstream(encodeQuery(m));
  }

  private substituteParse(name: string, r: Refusal): void {
    const m = this.marker();
    this.substitutions.push({ batch: this.sentBatches, marker: Buffer.from(m), error: this.errorFrame(r) });
    this.out.toUpstream(encodeParse({ name, query: m }));
  }

  // -------------------------------------------------------------------------------------------
  // upstream → client

  fromUpstream(f: PgFrame): void | Promise<void> {
    if (this.conversation.active && this.conversation.onFrame(f)) return;
    const skipping = this.step === UpstreamStep.SkipUntilReady;
    switch (f.type) {
      case B.DataRow:
        if (skipping) return;
        this.rows++;
        if (this.masker) return this.maskRow(f, this.masker);
        if (this.hooks.masksResults && !this.layoutKnown) {
          // Rows whose layout the gateway never saw cannot be checked: fail closed.
          this.refuseResult('the gateway could not determine the layout of this result; it was withheld');
          return;
        }
        this.capture?.row(f.payload, null);
        this.out.toClient(f.frame);
        return;
      case B.RowDescription:
        if (skipping) return;
        if (!this.hooks.masksResults) {
          this.capture?.layout(f.payload, null);
          this.out.toClient(f.frame);
          return;
        }
        return this.onRowDescription(f);
      case B.NoData: {
        if (skipping) return;
        const d = this.hooks.masksResults ? this.shiftDescribe() : null;
        if (d?.target === 'portal') {
          this.masker = null;
          this.layoutKnown = true;
        }
        if (!d?.injected) this.out.toClient(f.frame);
        return;
      }
      case B.CommandComplete:
      case B.EmptyQueryResponse:
      case B.PortalSuspended:
        if (skipping) return;
        this.completeResult(f);
        this.out.toClient(f.frame);
        return;
      case B.ErrorResponse:
        return this.onError(f);
      case B.ReadyForQuery:
        return this.onReady(f);
      case B.CopyOutResponse:
        if (skipping) return;
        if (this.hooks.masksResults) return this.onCopyOut(f);
        this.out.toClient(f.frame);
        return;
      case B.CopyData:
        if (skipping) return;
        if (this.copyMasker) {
          let r: { line: Buffer | string; changed: number };
          try {
            r = this.hooks.onCopyData(this.copyMasker, f.payload);
          } catch {
            this.refuseResult('masking failed on this COPY data; the rest of the result was withheld');
            return;
          }
          if (r.changed > 0) {
            this.noteMasked(this.copyMasker, r.changed);
            this.out.toClient(encodeCopyData(r.line));
            return;
          }
        }
        this.out.toClient(f.frame);
        return;
      case B.CopyDone:
        if (skipping) return;
        this.copyMasker = null;
        this.out.toClient(f.frame);
        return;
      case B.ParameterStatus: {
        const p = decodeParameterStatus(f.payload);
        // Reported whenever the value changes, by whatever route (SET, set_config, a pg_settings
        // UPDATE, a function, a reload): from now on the server would read statements differently.
        const problem = reportedLexingProblem(p.name, p.value);
        if (problem) throw new LexingStateError(`terminating connection: ${problem}`);
        if (p.name === 'session_authorization') this.out.toClient(encodeParameterStatus(p.name, this.clientUser));
        else this.out.toClient(f.frame);
        return;
      }
      case B.NotificationResponse: {
        const frame = this.scrubbedNotification(f);
        const pids = this.pids;
        if (pids && f.payload.length >= 4 && f.payload.readInt32BE(0) === pids.upstream) {
          const own = Buffer.from(frame);
          own.writeInt32BE(pids.client, 1 + 4);
          this.out.toClient(own);
          return;
        }
        this.out.toClient(frame);
        return;
      }
      case B.NoticeResponse:
        this.out.toClient(this.scrubbed(f, true).frame);
        return;
      case B.BackendKeyData:
        // The client keeps the key the gateway gave it.
        return;
      case B.CloseComplete: {
        const p = this.probes.get(this.doneBatches);
        if (p && !p.answered && ++p.seen > p.closes) {
          // the probe's: the Query after it runs
          p.answered = true;
          return;
        }
        if (!skipping) this.out.toClient(f.frame);
        return;
      }
      case B.FunctionCallResponse:
        if (skipping) return;
        this.onFunctionResult(f);
        return;
      default:
        // ParseComplete, BindComplete, CloseComplete, ParameterDescription, CopyIn/BothResponse, FunctionCallResponse...
        if (!skipping) this.out.toClient(f.frame);
        return;
    }
  }

  /** A function call's value, masked by the plan its decision made (the one `SELECT fn(…)` would get). */
  private onFunctionResult(f: PgFrame): void {
    const r = this.currentResult();
    if (r) {
      r.rows = 1;
      r.tag = 'FUNCTION CALL';
    }
    const plan = r?.fnPlan ?? null;
    if (this.hooks.masksResults && !r) {
      this.refuseResult('the gateway could not determine the layout of this result; it was withheld');
      return;
    }
    if (plan === null) {
      this.out.toClient(f.frame);
      return;
    }
    if (plan.kind === 'refuse') {
      this.refuseResult(plan.reason);
      return;
    }
    // the value as a one-column DataRow (count 1, then the same length and bytes) through the masker
    const count = Buffer.from([0, 1]);
    const row = (this.rowView ??= new DataRowView()).read(Buffer.concat([count, f.payload]));
    const out = (this.rowWriter ??= new DataRowWriter());
    out.begin(row);
    let changed: number;
    try {
      changed = this.hooks.onDataRow(plan.masker, row, out);
    } catch {
      row.release();
      this.refuseResult('masking failed on the result of this function call; it was withheld');
      return;
    }
    if (out.started) {
      const d = out.finish();
      // DataRow: type, length, count, then the value's length and bytes; the value is what V carries
      const len = d.readInt32BE(7);
      if (changed > 0) this.noteMasked(plan.masker, changed);
      this.out.toClient(encodeFunctionCallResponse(len < 0 ? null : Buffer.from(d.subarray(11, 11 + len))));
    } else {
      this.out.toClient(f.frame);
    }
    row.release();
  }

  private shiftDescribe(): PendingDescribe | null {
    while (this.describes.length && this.describes[0].batch < this.doneBatches) this.describes.shift();
    if (this.describes.length && this.describes[0].batch === this.doneBatches) return this.describes.shift()!;
    return null;
  }

  private onRowDescription(f: PgFrame): void | Promise<void> {
    const d = this.shiftDescribe();
    if (d && d.target === 'statement') {
      // Formats are not known until Bind: the portal's own layout decides the plan.
      this.out.toClient(f.frame);
      return;
    }
    const { fields } = decodeRowDescription(f.payload);
    const plan = this.hooks.onRowDescription(fields);
    const apply = (p: RowPlan): void => {
      this.layoutKnown = true;
      if (p && p.kind === 'refuse') {
        this.masker = null;
        this.refuseResult(p.reason);
        return;
      }
      this.masker = p ? p.masker : null;
      if (this.masker) this.startMasking(this.masker);
      this.capture?.layout(fields, this.masker);
      if (!d?.injected) this.out.toClient(f.frame);
    };
    if (plan instanceof Promise) return plan.then(apply);
    apply(plan);
  }

  private startMasking(m: RowMasker): void {
    const r = this.currentResult();
    if (r && !r.maskedColumns) r.maskedColumns = new Set(m.columns);
  }

  private maskRow(f: PgFrame, m: RowMasker): void {
    const row = (this.rowView ??= new DataRowView()).read(f.payload);
    const out = (this.rowWriter ??= new DataRowWriter());
    out.begin(row);
    let changed: number;
    try {
      changed = this.hooks.onDataRow(m, row, out);
    } catch {
      row.release();
      this.refuseResult('masking failed on a row of this result; the rest of the result was withheld');
      return;
    }
    // whatever went into the writer goes out, whatever the count says (never the clear row by mistake)
    if (out.started) {
      if (changed > 0) this.noteMasked(m, changed);
      const masked = out.finish();
      // DataRow frame: type byte and int32 length, then the payload
      this.capture?.row(masked.subarray(5), f.payload);
      this.out.toClient(masked);
    } else {
      this.capture?.row(f.payload, null);
      this.out.toClient(f.frame);
    }
    row.release();
  }

  private noteMasked(m: RowMasker, n: number): void {
    this.counters.masked(n);
    const r = this.currentResult();
    if (r) {
      r.maskedValues += n;
      if (!r.maskedColumns) r.maskedColumns = new Set(m.columns);
    }
  }

  private onCopyOut(f: PgFrame): void | Promise<void> {
    const info = decodeCopyOutResponse(f.payload);
    const plan = this.hooks.onCopyOut({ format: info.format, columnFormats: info.columnFormats, sql: this.currentResult()?.sql ?? null });
    const apply = (p: RowPlan): void => {
      if (p && p.kind === 'refuse') {
        this.refuseResult(p.reason);
        return;
      }
      this.copyMasker = p ? p.masker : null;
      if (this.copyMasker) this.startMasking(this.copyMasker);
      this.out.toClient(f.frame);
    };
    if (plan instanceof Promise) return plan.then(apply);
    apply(plan);
  }

  /** The result now flowing is withheld: the client gets an error, nothing else until ReadyForQuery. */
  private refuseResult(reason: string): void {
    const r = this.currentResult();
    if (r) r.error = { code: '42501', message: reason };
    this.out.toClient(encodeErrorResponse({ severity: 'ERROR', code: '42501', message: reason }));
    this.step = UpstreamStep.SkipUntilReady;
    this.masker = null;
    this.copyMasker = null;
  }

  /** The result the upstream is producing now: the oldest pending one of the current batch. */
  private currentResult(): PendingResult | null {
    while (this.pending.length && this.pending[0].batch < this.doneBatches) this.release(this.pending.shift()!);
    const p = this.pending[0];
    return p && p.batch === this.doneBatches ? p : null;
  }

  private completeResult(f: PgFrame): void {
    const r = this.currentResult();
    const tag = f.type === B.CommandComplete ? decodeCommandComplete(f.payload).tag : f.type === B.PortalSuspended ? 'SUSPENDED' : 'EMPTY';
    if (r) {
      r.rows += rowsOf(tag, this.rows);
      r.tag = tag;
      if (r.kind === 'execute') {
        this.pending.shift();
        this.emitResult(r);
      }
    } else {
      this.capture?.take();
    }
    this.capture?.endSet();
    this.rows = 0;
    this.masker = null;
    this.layoutKnown = false;
  }

  private emitResult(r: PendingResult): void {
    // Built member by member (no spreads): this runs once per statement.
    const data: ResultEventData = { rows: r.rows, durationMs: this.now() - r.startedAt };
    if (r.tag !== undefined) data.tag = r.tag;
    if (r.error) data.error = r.error;
    if (r.maskedColumns) data.masking = { columns: [...r.maskedColumns], values: r.maskedValues };
    if (this.capture) {
      const kept = this.capture.take();
      if (kept) data.returned = kept;
    }
    const s = r.start;
    if (s) {
      r.start = undefined;
      this.held--;
      this.events.statement(s.query, s.decision, data, s.at);
    } else {
      this.events.result(data);
    }
  }

  private onError(f: PgFrame): void {
    const batch = this.doneBatches;
    const probe = this.probes.get(batch);
    // an extended message failed before the Query of this batch: Postgres skips up to the next Sync
    const extendedFailed = probe !== undefined && !probe.answered && !this.ignoringUntilSync;
    if (extendedFailed) this.ignoringUntilSync = true;
    // A refused statement's placeholder failing: the client gets the refusal instead.
    let replaced = false;
    for (let i = 0; i < this.substitutions.length; i++) {
      const s = this.substitutions[i];
      if (s.batch === batch && f.frame.includes(s.marker)) {
        this.substitutions.splice(i, 1);
        if (this.step !== UpstreamStep.SkipUntilReady) this.out.toClient(s.error);
        replaced = true;
        break;
      }
    }
    // The client (and the session's events) get the error as masking lets it out.
    const clean = replaced ? null : this.scrubbed(f, false);
    // Upstream now skips the rest of the batch: nothing more comes for its describes and executes.
    let r = this.currentResult();
    // not the Query's error: the Query never runs (recorded when its batch is skipped, onReady)
    if (extendedFailed && r?.kind === 'query') r = null;
    if (!replaced && r) {
      const e = decodeErrorResponse(f.payload);
      r.error = { code: e.code, message: clean?.message ?? e.message };
      if (r.kind === 'execute') {
        this.pending.shift();
        this.emitResult(r);
      }
    }
    if (r && r.kind === 'execute') {
      this.pending = this.pending.filter((p) => p.batch !== batch || p.kind === 'query');
    }
    this.describes = this.describes.filter((d) => d.batch !== batch);
    this.capture?.endSet();
    this.rows = 0;
    this.masker = null;
    this.layoutKnown = false;
    this.copyMasker = null;
    if (!replaced && this.step !== UpstreamStep.SkipUntilReady) this.out.toClient(clean!.frame);
    else if (!replaced && isFatal(f)) this.out.toClient(clean!.frame);
  }

  private onReady(f: PgFrame): void {
    const first = this.doneBatches;
    let batch = first;
    if (this.ignoringUntilSync) {
      // this ReadyForQuery answers the next Sync: every batch up to it was skipped
      this.ignoringUntilSync = false;
      batch = this.syncBatches.find((b) => b >= first) ?? first;
    }
    this.txStatus = String.fromCharCode(f.payload[0] ?? 0x49);
    while (this.pending.length && this.pending[0].batch <= batch) {
      const p = this.pending.shift()!;
      if (p.kind === 'query' && p.batch === first && batch === first) this.emitResult(p);
      else if (p.kind === 'query' && p.batch >= first) {
        // sent, never run: Postgres skipped it after an earlier error in the pipeline
        p.error = { code: '25P02', message: 'not run: the server skipped it after an earlier error in the pipeline' };
        this.emitResult(p);
      } else this.release(p);
    }
    this.describes = this.describes.filter((d) => d.batch > batch);
    this.substitutions = this.substitutions.filter((s) => s.batch > batch);
    for (let b = first; b <= batch; b++) {
      this.maskedBatches.delete(b);
      this.probes.delete(b);
    }
    while (this.syncBatches.length && this.syncBatches[0] <= batch) this.syncBatches.shift();
    this.doneBatches = batch + 1;
    this.step = UpstreamStep.Relay;
    this.rows = 0;
    this.masker = null;
    this.layoutKnown = false;
    this.copyMasker = null;
    this.out.toClient(f.frame);
    if (this.settledWaiters.length && this.settingsKnown) {
      const waiters = this.settledWaiters;
      this.settledWaiters = [];
      for (const w of waiters) w();
    }
  }
}

/** Bytes of client messages held while a measured extended-protocol batch waits for its Sync. */
const MAX_HELD_BATCH_BYTES = 16 * 1024 * 1024;

/** Frames from a socket may be views into a reused chunk: what is held is copied. */
function copyFrame(f: PgFrame): PgFrame {
  const frame = Buffer.from(f.frame);
  return { type: f.type, frame, payload: frame.subarray(frame.length - f.payload.length) };
}

function describeRows(rows: number, tables: string[]): string {
  return `${rows} row${rows === 1 ? '' : 's'}${tables.length ? ` of ${tables.join(', ')}` : ''}`;
}

/** Hooks that cannot decide function calls: refused (fail closed). */
function noFunctionCalls(oid: number): FunctionCallDecision {
  const message = 'the function call protocol is not allowed on this connection';
  return { sql: `-- function call: OID ${oid >>> 0}`, verdict: { action: 'block', rule: null, reason: message }, refusal: { code: '42501', message } };
}

/** The statement name of a Bind (portal name, then statement name, each a C string). */
function boundStatement(payload: Buffer): string {
  const portalEnd = payload.indexOf(0);
  const end = portalEnd < 0 ? -1 : payload.indexOf(0, portalEnd + 1);
  return end < 0 ? '' : payload.toString('utf8', portalEnd + 1, end);
}

function isFatal(f: PgFrame): boolean {
  // Severity field 'S' is first in what Postgres sends; FATAL/PANIC end the session and must reach the client.
  return f.payload.includes('FATAL') || f.payload.includes('PANIC');
}

/** Rows a command touched, from its tag ("SELECT 5", "INSERT 0 3", "COPY 7"); else the rows seen. */
function rowsOf(tag: string, seen: number): number {
  const m = /(\d+)$/.exec(tag);
  if (m && /^(SELECT|INSERT|UPDATE|DELETE|MERGE|COPY|FETCH|MOVE)\b/.test(tag)) return Number(m[1]);
  return seen;
}
