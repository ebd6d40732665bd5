import {
  BackendMessageType as B,
  DataRowView,
  DataRowWriter,
  decodeCommandComplete,
  decodeDataRow,
  decodeErrorResponse,
  decodeRowDescription,
  encodeQuery,
  type PgFrame,
} from '@portcullis/protocol';
import type { ConsequenceCheck, ConsequenceJudgement, MeasurePlan } from '@portcullis/policy';
import type { ConsequenceHelpers, ConsequenceSample, RowPlan, SessionHooks } from './session-hooks.js';

/**
 * Measuring a write by running it (issue 20, docs in README "Approval by consequence"). The relay hands
 * the statement's upstream bytes here at a batch boundary (nothing else in flight); this runs them
 * inside a savepoint — or a transaction it opens, for an autocommit statement — with the queries
 * that measure around them, all pipelined, and keeps every answer out of the client's sight until
 * the count is known. Then either the run stands (RELEASE / COMMIT; the relay replays the answers to
 * the client, so the statement ran once) or it is undone (ROLLBACK TO / ROLLBACK) and the relay holds
 * it for approval or refuses it.
 */

/** Answers the client's statement may produce while it is measured (rows of RETURNING, of a SELECT beside it). */
const MAX_HELD_BYTES = 32 * 1024 * 1024;
/** Rows kept of a gateway query's answer (the per-table counts, a sample). */
const MAX_KEPT_ROWS = 1000;

/** What upstream answered up to one ReadyForQuery. */
export interface Answer {
  /** every frame but the ReadyForQuery, when kept for the client (see expect) */
  frames: PgFrame[];
  readyFrame: PgFrame | null;
  status: string;
  error: { code: string; message: string } | null;
  tags: string[];
  rowDescription: PgFrame | null;
  /** DataRow payloads of a gateway query */
  rows: Buffer[];
  /** the client's answers grew past MAX_HELD_BYTES: they could not be held */
  overflow: boolean;
  bytes: number;
}

function newAnswer(): Answer {
  return { frames: [], readyFrame: null, status: 'I', error: null, tags: [], rowDescription: null, rows: [], overflow: false, bytes: 0 };
}

/**
 * Upstream's answers while the gateway converses with it: split at each ReadyForQuery, in the order
 * the messages were sent. A group kept for the client holds every frame (the relay replays them);
 * the gateway's own queries keep only what it reads.
 */
export class UpstreamConversation {
  private groups: { answer: Answer; forClient: boolean; resolve: (a: Answer) => void }[] = [];

  get active(): boolean {
    return this.groups.length > 0;
  }

  expect(forClient: boolean): Promise<Answer> {
    return new Promise((resolve) => this.groups.push({ answer: newAnswer(), forClient, resolve }));
  }

  /** One frame from upstream; true when the conversation took it. */
  onFrame(f: PgFrame): boolean {
    const g = this.groups[0];
    if (!g) return false;
    // asynchronous messages during the gateway's own queries are the client's, as they come
    if (!g.forClient && (f.type === B.NotificationResponse || f.type === B.ParameterStatus)) return false;
    const a = g.answer;
    switch (f.type) {
      case B.ReadyForQuery:
        a.status = String.fromCharCode(f.payload[0] ?? 0x49);
        a.readyFrame = copyFrame(f);
        this.groups.shift();
        g.resolve(a);
        return true;
      case B.ErrorResponse: {
        const e = decodeErrorResponse(f.payload);
        a.error ??= { code: e.code, message: e.message };
        break;
      }
      case B.CommandComplete:
        a.tags.push(decodeCommandComplete(f.payload).tag);
        break;
      case B.RowDescription:
        a.rowDescription ??= copyFrame(f);
        break;
      case B.DataRow:
        if (!g.forClient && a.rows.length < MAX_KEPT_ROWS) a.rows.push(Buffer.from(f.payload));
        break;
    }
    if (g.forClient) {
      if (f.type === B.DataRow && a.overflow) return true;
      a.bytes += f.frame.length;
      if (a.bytes > MAX_HELD_BYTES && f.type === B.DataRow) {
        a.overflow = true;
        return true;
      }
      a.frames.push(copyFrame(f));
    }
    return true;
  }
}

/** Frames from the socket may be views into a reused chunk: what is held is copied. */
function copyFrame(f: PgFrame): PgFrame {
  const frame = Buffer.from(f.frame);
  return { type: f.type, frame, payload: frame.subarray(frame.length - f.payload.length) };
}

/** What the relay lends a measurement. */
export interface MeasureHost {
  /** the session's transaction status at the last ReadyForQuery (nothing is in flight) */
  readonly txStatus: string;
  toUpstream(buf: Buffer): void;
  readonly conversation: UpstreamConversation;
  readonly helpers: ConsequenceHelpers;
  readonly savepoint: string;
}

/** One measuring run of the client's statement. */
export interface Run {
  client: Answer;
  /** the run opened the transaction (the statement was autocommit) */
  opened: boolean;
  judgement: ConsequenceJudgement;
}

/**
 * Runs the client's bytes (`client`: what the relay would send for the statement, answered by
 * `groups` ReadyForQuery messages, the last one the client's) measured; the run is left open: settle it with keep or undo.
 */
export async function measure(host: MeasureHost, plan: MeasurePlan, client: Buffer, groups: number): Promise<Run> {
  const c = host.conversation;
  const opened = host.txStatus === 'I';
  const stats = plan.mode === 'stats';
  const pending: Promise<Answer>[] = [];
  const send = (sql: string, forClient = false) => {
    pending.push(c.expect(forClient));
    host.toUpstream(encodeQuery(sql));
  };
  send(opened ? 'BEGIN' : `SAVEPOINT ${host.savepoint}`);
  // in a transaction the gateway opened, nothing was written before
  if (stats && !opened) send(host.helpers.writesSql);
  for (let i = 0; i < groups; i++) pending.push(c.expect(true));
  host.toUpstream(client);
  if (stats) send(host.helpers.writesSql);
  const answers = await Promise.all(pending);
  let i = 0;
  const begun = answers[i++];
  const before = stats && !opened ? answers[i++] : null;
  const clientAnswers = answers.slice(i, i + groups);
  const after = stats ? answers[i + groups] : null;
  const answer = mergeAnswers(clientAnswers);
  if (begun.error) {
    // the savepoint itself failed (an aborted transaction answers 25P02): nothing of the client's ran
    answer.error ??= begun.error;
  }
  let judgement: ConsequenceJudgement;
  if (stats) {
    const perTable = after && !after.error ? host.helpers.writesBetween(textRows(before?.rows ?? []), textRows(after.rows)) : [];
    judgement = host.helpers.judge(plan, { perTable });
  } else {
    let count = 0;
    for (const t of answer.tags) count += host.helpers.rowsOfTag(t) ?? 0;
    judgement = host.helpers.judge(plan, { count });
  }
  return { client: answer, opened, judgement };
}

/** Several ReadyForQuery groups of one client batch as one (the last one's status). */
function mergeAnswers(list: Answer[]): Answer {
  if (list.length === 1) return list[0];
  const a = newAnswer();
  for (const x of list) {
    a.frames.push(...x.frames);
    if (x.readyFrame) a.frames.push(x.readyFrame);
    a.tags.push(...x.tags);
    a.error ??= x.error;
    a.overflow ||= x.overflow;
    a.bytes += x.bytes;
  }
  const last = list[list.length - 1];
  a.frames.pop();
  a.readyFrame = last.readyFrame;
  a.status = last.status;
  return a;
}

function textRows(rows: Buffer[]): [string, string][] {
  return rows.map((r) => decodeDataRow(r).map((v) => (v === null ? '' : v.toString('utf8'))) as [string, string]);
}

/** The run stands: RELEASE (or COMMIT of the transaction it opened). Resolves to the error that ended it, if any. */
export async function keep(host: MeasureHost, run: Run): Promise<{ code: string; message: string; frame: PgFrame | null } | null> {
  const p = host.conversation.expect(true);
  host.toUpstream(encodeQuery(run.opened ? 'COMMIT' : `RELEASE SAVEPOINT ${host.savepoint}`));
  const a = await p;
  if (!a.error) return null;
  return { ...a.error, frame: a.frames.find((f) => f.type === B.ErrorResponse) ?? null };
}

/**
 * The run is undone (ROLLBACK TO the savepoint and RELEASE it, or ROLLBACK of the transaction it
 * opened); with `sampleSql`, the sample query runs in between (and is undone too). Resolves to the
 * sample's answer.
 */
export async function undo(host: MeasureHost, run: Run, sampleSql: string | null): Promise<Answer | null> {
  const c = host.conversation;
  const pending: Promise<Answer>[] = [];
  const send = (sql: string) => {
    pending.push(c.expect(false));
    host.toUpstream(encodeQuery(sql));
  };
  const sp = host.savepoint;
  if (run.opened) {
    send('ROLLBACK');
    if (sampleSql) {
      send('BEGIN');
      send(sampleSql);
      send('ROLLBACK');
    }
  } else {
    send(`ROLLBACK TO SAVEPOINT ${sp}`);
    if (sampleSql) {
      send(sampleSql);
      send(`ROLLBACK TO SAVEPOINT ${sp}`);
    }
    send(`RELEASE SAVEPOINT ${sp}`);
  }
  const answers = await Promise.all(pending);
  return sampleSql ? answers[run.opened ? 2 : 1] : null;
}

/** The sample's rows, masked as the session masks results; null when nothing may be shown. */
export async function maskedSample(hooks: SessionHooks, answer: Answer | null, note: string | null): Promise<ConsequenceSample | null> {
  if (!answer || !answer.rowDescription) return note ? { columns: [], rows: [], note } : null;
  if (answer.error) return { columns: [], rows: [], note: `no sample: ${answer.error.message}` };
  const { fields } = decodeRowDescription(answer.rowDescription.payload);
  let plan: RowPlan = null;
  if (hooks.masksResults) plan = await hooks.onRowDescription(fields);
  if (plan && plan.kind === 'refuse') return { columns: fields.map((f) => f.name), rows: [], note: `no sample: ${plan.reason}` };
  const rows: (string | null)[][] = [];
  const view = new DataRowView();
  const writer = new DataRowWriter();
  for (const payload of answer.rows) {
    let values = decodeDataRow(payload);
    if (plan) {
      const row = view.read(payload);
      writer.begin(row);
      const changed = hooks.onDataRow(plan.masker, row, writer);
      if (writer.started) {
        const frame = writer.finish();
        values = decodeDataRow(frame.subarray(5));
      } else if (changed > 0) {
        row.release();
        return { columns: fields.map((f) => f.name), rows: [], note: 'no sample: its rows could not be masked' };
      }
      row.release();
    }
    rows.push(values.map((v) => (v === null ? null : v.toString('utf8'))));
  }
  return { columns: fields.map((f) => f.name), rows, ...(note ? { note } : {}) };
}

/** The check whose tolerance an approved count is held to: the one that tripped, else the first. */
export function toleranceCheck(plan: MeasurePlan, j: ConsequenceJudgement): ConsequenceCheck {
  return j.check ?? plan.checks[0];
}
