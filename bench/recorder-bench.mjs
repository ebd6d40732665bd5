#!/usr/bin/env node
// Recorder throughput: publishes N signed session events across many sessions as fast as JetStream
// acknowledges them (bounded in flight), with a Recorder running in this process on a random NATS
// prefix and its own database, and reports published/s, sustained persisted/s, end-to-end lag
// (stream publish → Postgres commit) and whether count in = count out.
// Needs `pnpm exec tsc -b apps/recorder` first, Postgres and NATS (JetStream) on their default ports.
//
//   node bench/recorder-bench.mjs [--events 200000] [--sessions 1000] [--inflight 4000] [--per-message 64] [--single]
//                                 [--rate <events/s>] [--batch <RECORDER_BATCH, default the recorder's>] [--backlog] [--json]
//
// Events are published as the gateway publishes them: batch messages of --per-message events of
// many sessions (libs/protocol event-batch.ts, one HMAC per message). --single publishes one signed
// event per message instead (what the api and approvals do).
// --rate paces publishing (e.g. --rate 20000: the lag at the target load rather than behind a flood).
// --backlog publishes everything first and then times the recorder draining it: the recorder's own rate,
// without the publisher (same process, same cores) competing with it.
import { randomBytes, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '200000' },
    sessions: { type: 'string', default: '1000' },
    inflight: { type: 'string', default: '4000' },
    batch: { type: 'string' },
    'per-message': { type: 'string', default: '64' },
    single: { type: 'boolean', default: false },
    rate: { type: 'string' },
    json: { type: 'boolean', default: false },
    // backlog: publish everything first, then start the recorder and time the drain
    backlog: { type: 'boolean', default: false },
  },
});
const N = Number(args.events);
const SESSIONS = Number(args.sessions);
const INFLIGHT = Number(args.inflight);
const PER_MESSAGE = args.single ? 1 : Number(args['per-message']);

// The recorder's own dependencies (pnpm keeps them under apps/recorder).
const req = createRequire(new URL('../apps/recorder/package.json', import.meta.url));
const load = (name) => import(pathToFileURL(req.resolve(name)).href);
const { connect, headers } = await load('@nats-io/transport-node');
const { jetstream, jetstreamManager } = await load('@nats-io/jetstream');
const { deriveKey, signEvent, encodeEventBatch, EVENT_BATCH_SIG_HEADER, natsNames, GENESIS_HASH, chainedEventHash, normaliseTime } = await load('@portcullis/protocol');
const { ensureDatabase, migrate } = await load('@portcullis/db');
const { Recorder, parseRecorderEnv } = await import('../apps/recorder/dist/index.js');

const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/portcullis_bench';
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
// The bench's own database starts empty every run: inserts into the bloated indexes of earlier runs
// (rows deleted, autovacuum off here) made later runs slower and the numbers drift.
if (!process.env.BENCH_DATABASE_URL) {
  const admin = new pg.Client({ connectionString: DATABASE_URL.replace(/\/[^/]*$/, '/postgres') });
  await admin.connect();
  await admin.query('DROP DATABASE IF EXISTS portcullis_bench WITH (FORCE)');
  await admin.end();
}
await ensureDatabase(DATABASE_URL);
await migrate(DATABASE_URL, new URL('../prisma/migrations', import.meta.url).pathname);

const prefix = `bench${randomBytes(4).toString('hex')}`;
const names = natsNames(prefix);
const master = randomBytes(32);
const eventKey = deriveKey(master, 'event-signing');
const log = (...a) => { if (!args.json) process.stdout.write(`${a.join(' ')}\n`); };

// Realistic mix: per statement a query, a decision and a result (counts + masking summary only).
log(`generating ${N} signed events over ${SESSIONS} sessions…`);
const sessionIds = Array.from({ length: SESSIONS }, () => `bench-${randomUUID()}`);
const seqs = new Array(SESSIONS).fill(0);
const events = new Array(N);
const now = new Date().toISOString();
for (let i = 0; i < N; i++) {
  const s = i % SESSIONS;
  const seq = ++seqs[s];
  const kind = seq === 1 ? 'session.start' : ['query', 'decision', 'result'][seq % 3];
  const data = kind === 'session.start' ? { clientAddr: '10.0.0.1:5432', user: 'bench', database: 'bench', pool: 'default', tls: true }
    : kind === 'query' ? { sql: `SELECT * FROM customers WHERE id = ${seq}`, protocol: 'extended' }
    : kind === 'decision' ? { action: 'allow', rule: 'default', reason: 'no guardrail matched' }
    : { tag: 'SELECT 1', rows: 1, durationMs: 0.4, masking: { columns: ['email', 'ssn'], values: 2 } };
  const e = { id: randomUUID(), sessionId: sessionIds[s], seq, time: now, type: kind, identity: 'agent:bench', connection: 'bench', gateway: 'gw-bench', data };
  events[i] = args.single ? { subject: names.sessionEvents(sessionIds[s]), body: JSON.stringify(signEvent(e, eventKey)), id: e.id } : e;
}
// The messages to publish: single signed events, or batches as the gateway sends them.
let messages = [];
if (args.single) messages = events;
else {
  for (let i = 0; i < N; i += PER_MESSAGE) {
    const { body, sig } = encodeEventBatch(events.slice(i, i + PER_MESSAGE), eventKey);
    const h = headers();
    h.set(EVENT_BATCH_SIG_HEADER, sig);
    messages.push({ subject: names.gatewayEvents('gw-bench'), body, id: `batch-${i}-${randomUUID()}`, headers: h });
  }
}

const recorder = new Recorder(parseRecorderEnv({
  DATABASE_URL, NATS_URL, NATS_PREFIX: prefix, PORTCULLIS_MASTER_KEY: master.toString('hex'),
  RECORDER_HTTP_PORT: '0', RECORDER_HTTP_HOST: '127.0.0.1', ...(args.batch ? { RECORDER_BATCH: args.batch } : {}), CHECKPOINT_SECONDS: '3600', LOG_LEVEL: 'warn',
}), { http: false });
if (!args.backlog) await recorder.start();

let persisted = 0;
const lags = [];
const marks = [];
let done;
const allPersisted = new Promise((r) => (done = r));
recorder.onBatch((b) => {
  persisted += b.persisted;
  for (const l of b.lagsMs) lags.push(l);
  marks.push([performance.now(), persisted]);
  if (persisted >= N) done();
});

const nc = await connect({ servers: NATS_URL });
const js = jetstream(nc);
// like the gateway: make sure the stream exists before publishing (idempotent, same config)
const jsm0 = await jetstreamManager(nc);
await jsm0.streams.info(names.eventStream).catch(() => jsm0.streams.add({ name: names.eventStream, subjects: [names.eventsAll], storage: 'file', duplicate_window: 120_000_000_000 }));
log(`publishing ${messages.length} messages of ${PER_MESSAGE} event(s) (≤ ${INFLIGHT} in flight)…`);
const t0 = performance.now();
let next = 0;
let failed = 0;
// --rate: publish at that many events/s (end-to-end lag at a sustainable load) instead of flat out.
const RATE = args.rate ? Number(args.rate) : 0;
async function lane() {
  while (next < messages.length) {
    const i = next++;
    const m = messages[i];
    if (RATE) {
      const due = t0 + ((i * PER_MESSAGE) / RATE) * 1000;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    }
    try {
      await js.publish(m.subject, m.body, { msgID: m.id, ...(m.headers ? { headers: m.headers } : {}) });
    } catch {
      failed += args.single ? 1 : Math.min(PER_MESSAGE, N - i * PER_MESSAGE);
    }
  }
}
await Promise.all(Array.from({ length: INFLIGHT }, lane));
const tPub = performance.now();
log(`published ${N} in ${((tPub - t0) / 1000).toFixed(2)}s (${failed} failed)`);
let tStart = t0;
if (args.backlog) {
  tStart = performance.now();
  await recorder.start();
}
const timeout = setTimeout(() => done(), 120_000);
await allPersisted;
clearTimeout(timeout);
const tDone = performance.now();

// count in = count out, and every chain intact
const db = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
const c = await db.query(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM "Event" WHERE chain = ANY($1::text[])`, [sessionIds]);
let broken = 0;
for (const sid of sessionIds.slice(0, 50)) {
  const r = await db.query(`SELECT id::text, "sessionId", seq, time, type, identity, connection, gateway, data, "prevHash", hash FROM "Event" WHERE chain = $1 ORDER BY seq`, [sid]);
  let prev = GENESIS_HASH;
  for (const row of r.rows) {
    const h = chainedEventHash({ ...row, time: normaliseTime(row.time), prevHash: row.prevHash });
    if (row.prevHash !== prev || h !== row.hash) { broken++; break; }
    prev = row.hash;
  }
}

// sustained rate: between 10% and 90% of the events persisted
const at = (frac) => marks.find(([, n]) => n >= frac * N)?.[0] ?? tDone;
const sustained = (0.8 * N) / ((at(0.9) - at(0.1)) / 1000);
lags.sort((a, b) => a - b);
const pct = (p) => lags[Math.min(lags.length - 1, Math.floor(p * lags.length))] ?? NaN;
const result = {
  events: N,
  sessions: SESSIONS,
  eventsPerMessage: PER_MESSAGE,
  rate: RATE || 'flat out',
  batch: recorder.env.RECORDER_BATCH,
  publishedPerSec: Math.round(N / ((tPub - t0) / 1000)),
  persistedPerSecOverall: Math.round(persisted / ((tDone - tStart) / 1000)),
  persistedPerSecSustained: Math.round(sustained),
  lagMsP50: pct(0.5),
  lagMsP99: pct(0.99),
  lagMsMax: lags.at(-1),
  countIn: N - failed,
  countOut: c.rows[0].n,
  distinctOut: c.rows[0].d,
  chainsChecked: Math.min(50, SESSIONS),
  chainsBroken: broken,
  ok: failed === 0 && c.rows[0].n === N && c.rows[0].d === N && broken === 0,
};
if (args.json) process.stdout.write(`${JSON.stringify(result)}\n`);
else {
  log(`persisted ${persisted} in ${((tDone - t0) / 1000).toFixed(2)}s`);
  for (const [k, v] of Object.entries(result)) log(`  ${k.padEnd(26)} ${v}`);
}

if (process.env.BENCH_DEBUG) {
  for (const m of [recorder.metrics.batchSize, recorder.metrics.batchSeconds]) {
    const v = (await m.get()).values;
    const sum = v.find((x) => x.metricName.endsWith('_sum'))?.value;
    const count = v.find((x) => x.metricName.endsWith('_count'))?.value;
    log(`  ${m.name}: count ${count} mean ${(sum / count).toFixed(4)}`);
  }
}

// clean up: the bench's rows, stream and consumer
await recorder.stop();
await db.query(`DELETE FROM "Event" WHERE chain = ANY($1::text[])`, [sessionIds]);
await db.query(`DELETE FROM "Session" WHERE id = ANY($1::text[])`, [sessionIds]);
// Autovacuum may be off (it is on the shared dev server): leave no dead rows behind for a database
// given by BENCH_DATABASE_URL (the default one is recreated at the start of every run).
await db.query(`VACUUM "Event", "Session"`);
await db.end();
const jsm = await jetstreamManager(nc);
await jsm.streams.delete(names.eventStream).catch(() => undefined);
await jsm.streams.delete(names.deadLetterStream).catch(() => undefined);
await nc.close();
process.exit(result.ok ? 0 : 1);
