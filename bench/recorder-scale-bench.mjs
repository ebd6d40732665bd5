#!/usr/bin/env node
// `pnpm bench:recorder` — how many events/s recorder processes persist, one against two, in one run.
// A backlog of gateway-shaped traffic (session.start, one `statement` event per statement, session.end;
// batch messages of one partition each, as the gateway publishes them) is put on a fresh stream, then
// 1 or 2 recorder processes (apps/recorder/dist/main.js, RECORDER_SHARD i/n) drain it into Postgres;
// rounds alternate 1, 2, 1, 2 … so drift on a shared host hits both alike. Every run checks count in =
// count out, no duplicate, and every chain of a sample of sessions.
// Needs `pnpm build`, Postgres on 127.0.0.1:5432 and NATS (JetStream) on 4222.
//
//   node bench/recorder-scale-bench.mjs [--events 100000] [--sessions 400] [--rounds 2] [--processes 1,2] [--per-message 64] [--json] [--cpu-prof <dir>] [--baseline <built checkout>] [--node-args='<args>']
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { connect, headers } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { ROOT, recorderDatabase, sleep, startRecorder } from './lib/stack.mjs';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '100000' },
    sessions: { type: 'string', default: '400' },
    rounds: { type: 'string', default: '2' },
    processes: { type: 'string', default: '1,2' },
    'per-message': { type: 'string', default: '64' },
    json: { type: 'boolean', default: false },
    /** write a V8 CPU profile of every recorder process into this directory */
    'cpu-prof': { type: 'string' },
    /** a built checkout (e.g. a worktree of an older commit): its recorder runs too, in the same rounds */
    baseline: { type: 'string' },
    /** extra node arguments for this build's recorders (e.g. '--max-semi-space-size=32'; with --baseline . the same build runs without them) */
    'node-args': { type: 'string', default: '' },
  },
});
const N = Number(args.events);
const SESSIONS = Number(args.sessions);
const PER_MESSAGE = Number(args['per-message']);
const COUNTS = args.processes.split(',').map(Number);
const protocol = await import(join(ROOT, 'libs/protocol/dist/index.js'));
const { deriveKey, encodeEventBatch, eventPartition, EVENT_BATCH_SIG_HEADER, natsNames, GENESIS_HASH, chainHash } = protocol;
const log = (...a) => { if (!args.json) process.stderr.write(`${a.join(' ')}\n`); };

const ADMIN = 'postgresql://postgres@127.0.0.1:5432/postgres';
const DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/portcullis_recorder_scale_bench';
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const admin = new pg.Client({ connectionString: ADMIN });
await admin.connect();
await admin.query('DROP DATABASE IF EXISTS portcullis_recorder_scale_bench WITH (FORCE)');
await admin.end();
await recorderDatabase(DATABASE_URL);
const db = new pg.Pool({ connectionString: DATABASE_URL, max: 2, application_name: 'scale-bench' });
/** the recorders' connections name themselves, so their backends can be watched in pg_stat_activity */
const RECORDER_DB_URL = `${DATABASE_URL}?application_name=bench-recorder`;
db.on('error', (err) => log(`idle bench connection failed: ${err.message}`));
const master = randomBytes(32);
const eventKey = deriveKey(master, 'event-signing');
const nc = await connect({ servers: NATS_URL });
const js = jetstream(nc);
const jsm = await jetstreamManager(nc);

/** A fresh stream holding N events of SESSIONS sessions, interleaved as a gateway's flushes interleave them. */
async function backlog() {
  const prefix = `rscale${randomBytes(4).toString('hex')}`;
  const names = natsNames(prefix);
  await jsm.streams.add({ name: names.eventStream, subjects: [names.eventsAll], storage: 'file', duplicate_window: 120_000_000_000 });
  const ids = Array.from({ length: SESSIONS }, () => `bench-${randomUUID()}`);
  const per = Math.floor(N / SESSIONS);
  const time = new Date().toISOString();
  const byPartition = new Map();
  for (let k = 0; k < per; k++) {
    for (const sid of ids) {
      const seq = k + 1;
      const type = seq === 1 ? 'session.start' : seq === per ? 'session.end' : 'statement';
      const data = type === 'session.start' ? { clientAddr: '10.0.0.1:5432', user: 'bench', database: 'bench', pool: 'default', tls: true, policy: 'bench', policyVersion: 1 }
        : type === 'session.end' ? { reason: 'client_closed', durationMs: 1000, statements: per - 2, bytesIn: 1, bytesOut: 1 }
        : { sql: `SELECT abalance FROM pgbench_accounts WHERE aid = ${seq * 7919 % 100000};`, protocol: 'simple', action: 'allow', rule: null, reason: 'no guardrail matched', kinds: ['SELECT'], cached: true, tag: 'SELECT 1', rows: 1, durationMs: 0.05 };
      const e = { id: randomUUID(), sessionId: sid, seq, time, type, identity: 'agent:bench', connection: 'bench', gateway: 'gw-bench', data };
      const p = eventPartition(sid);
      if (!byPartition.has(p)) byPartition.set(p, []);
      byPartition.get(p).push(e);
    }
  }
  const messages = [];
  for (const [p, evs] of byPartition) {
    for (let i = 0; i < evs.length; i += PER_MESSAGE) {
      const { body, sig } = encodeEventBatch(evs.slice(i, i + PER_MESSAGE), eventKey);
      const h = headers();
      h.set(EVENT_BATCH_SIG_HEADER, sig);
      messages.push({ subject: names.gatewayEvents('gw-bench', p), body, h });
    }
  }
  let next = 0;
  await Promise.all(Array.from({ length: 256 }, async () => {
    while (next < messages.length) {
      const m = messages[next++];
      await js.publish(m.subject, m.body, { headers: m.h });
    }
  }));
  return { prefix, names, ids, events: per * SESSIONS };
}

/** utime + stime of a process in ms (clock ticks of 10 ms) */
function cpuOf(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').slice(readFileSync(`/proc/${pid}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

const count = async (ids) => Number((await db.query(`SELECT count(*) AS n FROM "Event" WHERE chain = ANY($1::text[])`, [ids])).rows[0].n);

const BUILDS = [
  { name: `this build${args['node-args'] ? ` (node ${args['node-args']})` : ''}`, entry: join(ROOT, 'apps/recorder/dist/main.js'), nodeArgs: args['node-args'].split(' ').filter(Boolean) },
  ...(args.baseline ? [{ name: 'baseline', entry: join(args.baseline, 'apps/recorder/dist/main.js'), nodeArgs: [] }] : []),
];

async function drain(processes, build) {
  const b = await backlog();
  const recorders = await Promise.all(Array.from({ length: processes }, (_, i) => startRecorder({ prefix: b.prefix, databaseUrl: RECORDER_DB_URL, masterKeyHex: master.toString('hex'), shard: `${i}/${processes}`, entry: build.entry, nodeArgs: [...build.nodeArgs, ...(args['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${args['cpu-prof']}`] : [])] })));
  const load0 = loadavg()[0];
  // CPU is counted from here (start-up, module loading, left out)
  const cpu0 = recorders.reduce((sum, r) => sum + cpuOf(r.pid), 0);
  const pgCpu0 = new Map((await db.query(`SELECT pid FROM pg_stat_activity WHERE application_name = 'bench-recorder'`)).rows.map((r) => [r.pid, cpuOf(r.pid)]));
  const t0 = performance.now();
  const marks = [];
  /** what the recorders' Postgres backends were doing at each sample: wait event (or CPU) → count */
  const waits = new Map();
  const backends = new Set();
  let n = 0;
  while (n < b.events && performance.now() - t0 < 300_000) {
    await sleep(100);
    const a = await db.query(`SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity WHERE application_name = 'bench-recorder'`);
    for (const r of a.rows) {
      backends.add(r.pid);
      const k = r.state === 'idle' ? 'idle (waiting for the recorder)' : r.wait_event ? `${r.wait_event_type}:${r.wait_event}` : 'running (CPU)';
      waits.set(k, (waits.get(k) ?? 0) + 1);
    }
    n = await count(b.ids);
    marks.push([performance.now(), n]);
  }
  const tEnd = performance.now();
  const pgCpuMs = [...backends].reduce((sum, pid) => { try { return sum + cpuOf(pid) - (pgCpu0.get(pid) ?? 0); } catch { return sum; } }, 0);
  const scraped = await Promise.all(recorders.map((r) => r.metrics()));
  const perRecorder = scraped.map((m) => m.get('recorder_events_persisted_total') ?? 0);
  // the recorders' own count of committed batches (one transaction each) and their mean time
  const batches = scraped.reduce((a, m) => a + (m.get('recorder_batches_total') ?? 0), 0);
  const batchMs = (1000 * scraped.reduce((a, m) => a + (m.get('recorder_batch_duration_seconds_sum') ?? 0), 0)) / Math.max(1, scraped.reduce((a, m) => a + (m.get('recorder_batch_duration_seconds_count') ?? 0), 0));
  // CPU the recorder processes used (user + system, all threads), per stored event
  const cpuMs = recorders.reduce((sum, r) => sum + cpuOf(r.pid), 0) - cpu0;
  await Promise.all(recorders.map((r) => r.stop()));
  // sustained: between 10 % and 90 % of the backlog stored (start-up and the tail left out)
  const at = (f) => marks.find(([, c]) => c >= f * b.events)?.[0] ?? tEnd;
  const sustained = (0.8 * b.events) / ((at(0.9) - at(0.1)) / 1000);
  // count in = count out, once each, chains intact (a sample)
  const dup = Number((await db.query(`SELECT count(*) - count(DISTINCT id) AS d FROM "Event" WHERE chain = ANY($1::text[])`, [b.ids])).rows[0].d);
  let broken = 0;
  for (const sid of b.ids.slice(0, 40)) {
    const r = await db.query(`SELECT id::text, "sessionId", seq, time, type, identity, connection, gateway, data, "prevHash", hash FROM "Event" WHERE chain = $1 ORDER BY seq`, [sid]);
    let prev = GENESIS_HASH;
    for (const row of r.rows) {
      const e = { id: row.id, sessionId: row.sessionId, seq: row.seq, time: row.time.toISOString(), type: row.type, identity: row.identity, connection: row.connection, gateway: row.gateway, data: row.data, prevHash: row.prevHash };
      if (row.prevHash !== prev || chainHash(prev, e) !== row.hash) { broken++; break; }
      prev = row.hash;
    }
  }
  await jsm.streams.delete(b.names.eventStream).catch(() => undefined);
  await jsm.streams.delete(b.names.deadLetterStream).catch(() => undefined);
  await db.query(`DELETE FROM "Event" WHERE chain = ANY($1::text[])`, [b.ids]);
  await db.query(`DELETE FROM "Session" WHERE id = ANY($1::text[])`, [b.ids]);
  await db.query('VACUUM "Event", "Session"');
  const samples = [...waits.values()].reduce((a, x) => a + x, 0);
  const waitShares = Object.fromEntries([...waits].sort((x, y) => y[1] - x[1]).map(([k, v]) => [k, Math.round((1000 * v) / samples) / 10]));
  return {
    build: build.name, processes, events: b.events, persistedPerSec: Math.round(sustained), seconds: (tEnd - t0) / 1000, perRecorder,
    recorderCpuUsPerEvent: (cpuMs * 1000) / b.events, postgresCpuUsPerEvent: (pgCpuMs * 1000) / b.events,
    transactions: batches, eventsPerTransaction: batches ? b.events / batches : NaN, batchMs, backendStates: waitShares, load: [load0, loadavg()[0]],
    stored: n, duplicates: dup, chainsChecked: Math.min(40, b.ids.length), chainsBroken: broken, ok: n === b.events && dup === 0 && broken === 0,
  };
}

log(`recorder scale bench: ${N} events over ${SESSIONS} sessions per drain (statement-shaped, ${PER_MESSAGE} per message), processes ${COUNTS.join(' vs ')}, ${args.rounds} round(s); host load ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
const runs = [];
for (let round = 0; round < Number(args.rounds); round++) {
  // the order rotates per round so drift on a shared host hits every configuration alike
  const configs = BUILDS.flatMap((b) => COUNTS.map((k) => [b, k]));
  const order = round % 2 ? [...configs].reverse() : configs;
  for (const [build, k] of order) {
    const r = await drain(k, build);
    runs.push(r);
    log(`  round ${round + 1}: ${BUILDS.length > 1 ? `${build.name}, ` : ''}${k} recorder(s) ${String(r.persistedPerSec).padStart(7)} events/s sustained (${r.seconds.toFixed(1)} s, per recorder ${r.perRecorder.join(' + ')}; CPU per event: recorder ${r.recorderCpuUsPerEvent.toFixed(1)} µs, its Postgres backends ${r.postgresCpuUsPerEvent.toFixed(1)} µs; ${r.transactions} batches (transactions), ${r.eventsPerTransaction.toFixed(0)} events and ${r.batchMs.toFixed(0)} ms each; load ${r.load.map((x) => x.toFixed(1)).join(' → ')}), ${r.ok ? `all stored once, ${r.chainsChecked} sampled chains verified intact` : `NOT OK: stored ${r.stored}, duplicates ${r.duplicates}, broken ${r.chainsBroken}`}`);
    log(`    recorders' Postgres backends (share of samples): ${Object.entries(r.backendStates).map(([w, p]) => `${w} ${p} %`).join(', ')}`);
  }
}
const mean = (b, k, f = (r) => r.persistedPerSec) => { const rs = runs.filter((r) => r.build === b.name && r.processes === k); return rs.reduce((s, r) => s + f(r), 0) / rs.length; };
const summary = {
  builds: BUILDS.map((b) => ({
    build: b.name,
    means: Object.fromEntries(COUNTS.map((k) => [k, Math.round(mean(b, k))])),
    ratio: COUNTS.length > 1 ? mean(b, COUNTS[1]) / mean(b, COUNTS[0]) : null,
    recorderCpuUsPerEvent: Object.fromEntries(COUNTS.map((k) => [k, Math.round(mean(b, k, (r) => r.recorderCpuUsPerEvent) * 10) / 10])),
    postgresCpuUsPerEvent: Object.fromEntries(COUNTS.map((k) => [k, Math.round(mean(b, k, (r) => r.postgresCpuUsPerEvent) * 10) / 10])),
  })),
  runs, load: loadavg(), ok: runs.every((r) => r.ok),
};
if (args.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
else {
  for (const b of summary.builds) {
    process.stdout.write(`${BUILDS.length > 1 ? `${b.build}: ` : ''}${COUNTS.map((k) => `${k} recorder(s): ${b.means[k]} events/s (CPU/event: recorder ${b.recorderCpuUsPerEvent[k]} µs, Postgres ${b.postgresCpuUsPerEvent[k]} µs)`).join(', ')}${b.ratio ? ` → ${b.ratio.toFixed(2)}× (target ≥ 1.8×)` : ''}\n`);
  }
  process.stdout.write(`one statement event per statement: events/s = statements/s; host load ${loadavg().map((x) => x.toFixed(1)).join(' ')}; ${summary.ok ? `every run: count in = count out, no duplicate, ${runs.reduce((a, r) => a + r.chainsChecked, 0)} sampled chains verified intact` : 'SOME RUN FAILED ITS CHECKS'}\n`);
}
await db.end();
await nc.close();
process.exit(summary.ok ? 0 : 1);
