#!/usr/bin/env node
// `pnpm bench:pg` — pgbench through direct Postgres, pgbouncer and the Portcullis gateway, interleaved in
// one run on one private Postgres cluster, and the gateway's memory with 1,000 idle sessions.
// Needs `pnpm build` first, NATS on 127.0.0.1:4222, pgbouncer (apt-get install -y pgbouncer).
//
//   node bench/pg-bench.mjs [--seconds 10] [--rounds 2] [--clients 8] [--idle 1000] [--scale 10] [--quick]
//                           [--recorders 1] [--baseline <checkout>]
//
// --recorders N: every gateway's events are chained by N recorder processes (RECORDER_SHARD i/N) into a
// database on the bench cluster, as in production; the report gives events/s and the recorder lag
// (stream publish → commit, from recorder_lag_seconds) of each gateway run. 0: no recorder.
// --baseline <dir>: a built checkout of another version (e.g. `git worktree add /tmp/base main && cd
// /tmp/base && pnpm install --offline && pnpm db:generate && pnpm build`); its gateway (and its
// recorder) run as `gateway-base` beside this one in the simple, prepared and masking scenarios.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { GATEWAY_NODE_ARGS, ROOT, lagSummary, makeTlsCert, recorderDatabase, recorderKeys, startCluster, startGateway, startPgbouncer, startRecorder, sleep } from './lib/stack.mjs';

const run = promisify(execFile);
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]?.startsWith('--') || all[i + 1] === undefined ? 'true' : all[i + 1]]] : acc), []),
);
const quick = args.quick === 'true';
const SECONDS = Number(args.seconds ?? (quick ? 3 : 10));
const ROUNDS = Number(args.rounds ?? (quick ? 1 : 2));
const CLIENTS = Number(args.clients ?? 8);
const IDLE = Number(args.idle ?? (quick ? 200 : 1000));
const SCALE = Number(args.scale ?? (quick ? 2 : 10));
const RECORDERS = Number(args.recorders ?? 1);
const BASELINE = args.baseline && args.baseline !== 'true' ? args.baseline : null;

// The policy of CONTRACT.md: guardrails on, so every statement is parsed/decided.
const policy = {
  name: 'bench',
  guardrails: [
    { name: 'no-destructive-ddl', action: 'block', match: { statements: ['DROP', 'TRUNCATE', 'ALTER', 'GRANT', 'REVOKE', 'CREATE ROLE', 'ALTER ROLE'] } },
    { name: 'no-session-killing', action: 'block', match: { functions: ['pg_terminate_backend', 'pg_cancel_backend'] } },
    { name: 'no-copy-program', action: 'block', match: { copy: 'program' } },
    { name: 'bulk-writes', action: 'require_approval', match: { statements: ['DELETE', 'UPDATE'], unbounded: true } },
  ],
  dynamicSql: 'block',
  masking: [],
  approval: { approvers: ['approvers'], timeoutSeconds: 300 },
};

// The masking scenario's policy: the same guardrails, plus column rules and content detectors over text.
const maskingPolicy = {
  ...policy,
  name: 'bench-masking',
  masking: [
    { name: 'card-numbers', columns: ['public.customers.card'], strategy: 'partial', keepLast: 4 },
    { name: 'emails', columns: ['customers.email'], strategy: 'hash' },
    { name: 'pii-in-free-text', detectors: ['EMAIL', 'CREDIT_CARD', 'PHONE'], strategy: 'redact' },
  ],
};
const MASK_ROWS = 10_000;
// 10 rows of 5 text columns per transaction; every row has an email and a card number, a quarter of the notes hide one more.
const MASK_SCRIPT = '\\set id random(1, ' + (MASK_ROWS - 9) + ')\nSELECT id, name, email, card, note FROM customers WHERE id BETWEEN :id AND :id + 9;\n';

/** A Luhn-valid 16-digit card number. */
function cardNumber(i) {
  const digits = `4${String(i).padStart(14, '0')}`.split('').map(Number);
  let sum = 0;
  for (let k = 0; k < 15; k++) {
    let d = digits[14 - k];
    if (k % 2 === 0) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
  }
  const check = (10 - (sum % 10)) % 10;
  return `${digits.join('')}${check}`.replace(/(\d{4})(?=\d)/g, '$1 ');
}

async function createMaskingTable(url) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL, card text NOT NULL, note text NOT NULL)');
  const rows = [];
  for (let i = 1; i <= MASK_ROWS; i++) {
    const note = i % 4 === 0 ? `call back, new address is person${i}@mail.example.org` : `customer since ${2000 + (i % 25)}, prefers email contact`;
    rows.push([i, `Customer ${i}`, `user${i}@example.com`, cardNumber(i), note]);
  }
  for (let i = 0; i < rows.length; i += 1000) {
    const chunk = rows.slice(i, i + 1000);
    await c.query(`INSERT INTO customers VALUES ${chunk.map((_, j) => `($${j * 5 + 1}, $${j * 5 + 2}, $${j * 5 + 3}, $${j * 5 + 4}, $${j * 5 + 5})`).join(',')}`, chunk.flat());
  }
  await c.query('ANALYZE customers');
  await c.end();
}

const log = (...a) => process.stderr.write(a.join(' ') + '\n');

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function pgbench({ port, db, password, clients, mode, script, logDir, scriptDir, tls = false }) {
  const a = ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(SECONDS), '-M', mode, '-n'];
  if (script === 'select') a.push('-S');
  else if (script === 'write') a.push('-N'); // simple-update: UPDATE accounts, SELECT, INSERT history
  else if (script === 'masking') {
    const file = join(scriptDir, 'masking.sql');
    writeFileSync(file, MASK_SCRIPT);
    a.push('-f', file);
  }
  if (logDir) a.push('-l', `--log-prefix=${join(logDir, 'tx')}`);
  a.push(db);
  const env = { ...process.env, PGPASSWORD: password ?? '', PGSSLMODE: tls ? 'require' : 'disable' };
  const { stdout } = await run('pgbench', a, { env, cwd: logDir ?? tmpdir(), maxBuffer: 64 << 20 });
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
  const latAvg = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1]);
  const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
  let p50 = NaN;
  let p99 = NaN;
  if (logDir) {
    const lat = [];
    for (const f of readdirSync(logDir).filter((n) => n.startsWith('tx'))) {
      for (const line of readFileSync(join(logDir, f), 'utf8').split('\n')) {
        const cols = line.split(' ');
        if (cols.length > 3) lat.push(Number(cols[2]));
      }
      rmSync(join(logDir, f));
    }
    lat.sort((x, y) => x - y);
    p50 = percentile(lat, 50) / 1000;
    p99 = percentile(lat, 99) / 1000;
  }
  if (!Number.isFinite(tps)) throw new Error(`pgbench printed no tps:\n${stdout}`);
  return { tps, latAvg, p50, p99, failed };
}

/** One row through the masking gateway: the bench must measure masking that actually happens. */
async function checkMasking(gw) {
  const c = new pg.Client({ host: '127.0.0.1', port: gw.port, user: 'bench', password: gw.credential(), database: 'bench', ssl: false });
  await c.connect();
  const { rows: [r] } = await c.query('SELECT id, name, email, card, note FROM customers WHERE id = 4');
  await c.end();
  const clear = [`user4@example.com`, cardNumber(4), 'person4@mail.example.org'];
  const leaked = clear.filter((v) => JSON.stringify(r).includes(v));
  if (leaked.length || !r.card.endsWith(cardNumber(4).slice(-4))) throw new Error(`masking is not applied: ${JSON.stringify(r)}`);
  return `row 4 through the gateway: card ${JSON.stringify(r.card)}, email ${JSON.stringify(r.email.slice(0, 24))}…, note ${JSON.stringify(r.note)}`;
}

async function idleSessions(gw, n) {
  const before = gw.rssKiB();
  const clients = [];
  const token = gw.credential();
  for (let i = 0; i < n; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 50); j++) {
      const c = new pg.Client({ host: '127.0.0.1', port: gw.port, user: 'bench', password: token, database: 'bench', ssl: false });
      batch.push(c.connect().then(() => clients.push(c)));
    }
    await Promise.all(batch);
  }
  await sleep(1500);
  const during = gw.rssKiB();
  await Promise.all(clients.map((c) => c.end()));
  return { sessions: clients.length, rssBeforeMiB: before / 1024, rssWithSessionsMiB: during / 1024, perSessionKiB: (during - before) / clients.length };
}

async function main() {
  log(`pg-bench: ${SECONDS}s per run, ${ROUNDS} round(s), ${CLIENTS} clients, scale ${SCALE}; gateway: node ${GATEWAY_NODE_ARGS.join(' ')}, guardrails on, recording required`);
  // One certificate for the TLS scenario: Postgres, pgbouncer and the gateway each terminate TLS with it.
  const tlsCert = makeTlsCert();
  const cluster = await startCluster({ maxConnections: IDLE + 200, tls: tlsCert });
  const cleanups = [() => cluster.stop(), () => tlsCert.remove()];
  const work = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  try {
    const admin = new pg.Client({ connectionString: cluster.url() });
    await admin.connect();
    await admin.query('CREATE DATABASE bench');
    await admin.end();
    log('pgbench -i ...');
    await run('pgbench', ['-i', '-q', '-s', String(SCALE), '-h', '127.0.0.1', '-p', String(cluster.port), '-U', 'postgres', 'bench']);
    await createMaskingTable(cluster.url('bench'));

    const bouncer = await startPgbouncer(cluster.port, { poolSize: CLIENTS * 2, tls: tlsCert });
    cleanups.unshift(() => bouncer.stop());
    const keys = await recorderKeys();
    const recDb = RECORDERS ? await recorderDatabase(cluster.url('recorder')) : null;
    const baseDb = RECORDERS && BASELINE ? await recorderDatabase(cluster.url('recorder_base'), BASELINE) : null;
    /** a gateway and, with --recorders, its recorder processes (each gateway its own stream) */
    const gateway = async (opts, root = ROOT, db = recDb) => {
      const g = await startGateway({ ...opts, eventKeyHex: keys.eventKeyHex, entry: join(root, 'apps/gateway/dist/main.js'), root });
      cleanups.unshift(() => g.stop());
      g.recorders = [];
      for (let i = 0; i < RECORDERS; i++) {
        const r = await startRecorder({ prefix: g.prefix, databaseUrl: db, masterKeyHex: keys.masterKeyHex, shard: `${i}/${RECORDERS}`, entry: join(root, 'apps/recorder/dist/main.js') });
        cleanups.unshift(() => r.stop());
        g.recorders.push(r);
      }
      return g;
    };
    const gw = await gateway({ target: { port: cluster.port, database: 'bench' }, policy, env: { GATEWAY_TLS_CERT: tlsCert.cert, GATEWAY_TLS_KEY: tlsCert.key } });
    const gwMask = await gateway({ target: { port: cluster.port, database: 'bench' }, policy: maskingPolicy });
    // The same gateway with every session relayed in JavaScript: what the native fast lane is worth, in the same run.
    const gwJs = await gateway({ target: { port: cluster.port, database: 'bench' }, policy, env: { GATEWAY_FAST_LANE: 'false' } });
    // Another version's gateway and recorder, same run (--baseline).
    const gwBase = BASELINE ? await gateway({ target: { port: cluster.port, database: 'bench' }, policy }, BASELINE, baseDb) : null;
    const gwBaseMask = BASELINE ? await gateway({ target: { port: cluster.port, database: 'bench' }, policy: maskingPolicy }, BASELINE, baseDb) : null;

    const maskCheck = await checkMasking(gwMask);
    log(`masking check: ${maskCheck}`);

    const targets = [
      { name: 'direct', port: cluster.port, db: 'bench', password: () => '' },
      { name: 'pgbouncer', port: bouncer.port, db: 'bench', password: () => '' },
      { name: 'gateway', port: gw.port, db: 'bench', password: () => gw.credential(), gw },
    ];
    const withJs = [...targets, { name: 'gateway-js', port: gwJs.port, db: 'bench', password: () => gwJs.credential(), gw: gwJs }];
    const base = gwBase ? [{ name: 'gateway-base', port: gwBase.port, db: 'bench', password: () => gwBase.credential(), gw: gwBase }] : [];
    const scenarios = [
      { name: `select-only simple, ${CLIENTS} clients`, clients: CLIENTS, mode: 'simple', script: 'select', targets: [...withJs, ...base] },
      { name: `select-only prepared, ${CLIENTS} clients`, clients: CLIENTS, mode: 'prepared', script: 'select', targets: [...withJs, ...base] },
      { name: `write mix (simple-update), ${CLIENTS} clients`, clients: CLIENTS, mode: 'prepared', script: 'write', targets: withJs },
      { name: 'select-only prepared, 1 client (latency)', clients: 1, mode: 'prepared', script: 'select', latency: true },
      // Clients over TLS, as in production (the gateway refuses plaintext unless told otherwise): TLS
      // sessions never take the fast lane. Postgres, pgbouncer and the gateway each terminate TLS.
      { name: `select-only prepared over TLS, ${CLIENTS} clients`, clients: CLIENTS, mode: 'prepared', script: 'select', tls: true },
      {
        name: `masking: 10 rows × 5 text cols, prepared, ${CLIENTS} clients`, clients: CLIENTS, mode: 'prepared', script: 'masking', masking: true,
        targets: [
          targets[0], { name: 'gateway', port: gwMask.port, db: 'bench', password: () => gwMask.credential(), gw: gwMask },
          ...(gwBaseMask ? [{ name: 'gateway-base', port: gwBaseMask.port, db: 'bench', password: () => gwBaseMask.credential(), gw: gwBaseMask }] : []),
        ],
      },
    ];
    const results = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const sc of scenarios) {
        // Interleave targets inside each scenario, rotating the order per round, so drift hits all alike.
        const ts = sc.targets ?? targets;
        const order = ts.map((_, i) => ts[(i + round) % ts.length]);
        for (const t of order) {
          const logDir = sc.latency ? mkdtempSync(join(work, 'lat-')) : undefined;
          const before = t.gw ? await recording(t.gw) : null;
          const r = await pgbench({ port: t.port, db: t.db, password: t.password(), clients: sc.clients, mode: sc.mode, script: sc.script, logDir, scriptDir: work, tls: !!sc.tls });
          if (before) r.recording = await recorded(t.gw, before, r.tps * SECONDS);
          const rec = r.recording;
          log(`  round ${round + 1} ${sc.name.padEnd(44)} ${t.name.padEnd(12)} ${r.tps.toFixed(0).padStart(7)} tps  avg ${r.latAvg.toFixed(3)} ms${sc.latency ? `  p50 ${r.p50.toFixed(3)} ms p99 ${r.p99.toFixed(3)} ms` : ''}${r.failed ? `  FAILED ${r.failed}` : ''}${rec ? `  events ${rec.eventsPerSec.toFixed(0)}/s (${rec.eventsPerTx.toFixed(2)}/tx)${rec.lag ? `, recorder lag p50 ${fmtS(rec.lag.p50S)} p99 ${fmtS(rec.lag.p99S)}, >1 s ${(rec.lag.over1s * 100).toFixed(1)} %, drained ${rec.drainS.toFixed(1)} s after` : ''}` : ''}`);
          ((results[sc.name] ??= {})[t.name] ??= []).push(r);
        }
      }
    }
    log(`idle sessions: opening ${IDLE} ...`);
    const idle = await idleSessions(gw, IDLE);

    const mean = (rs, k) => rs.reduce((s, r) => s + r[k], 0) / rs.length;
    const worst = (rs, f) => Math.max(...rs.map((r) => (r.recording?.lag ? f(r.recording.lag) : NaN)).filter(Number.isFinite));
    const rows = [];
    for (const sc of scenarios) {
      const r = results[sc.name];
      const tps = Object.fromEntries((sc.targets ?? targets).map((t) => [t.name, mean(r[t.name], 'tps')]));
      const row = {
        scenario: sc.name, direct: tps.direct, pgbouncer: tps.pgbouncer ?? null, gateway: tps.gateway,
        gatewayVsPgbouncer: tps.pgbouncer ? tps.gateway / tps.pgbouncer : null, gatewayVsDirect: tps.gateway / tps.direct,
        gatewayJs: tps['gateway-js'] ?? null, gatewayJsVsPgbouncer: tps['gateway-js'] && tps.pgbouncer ? tps['gateway-js'] / tps.pgbouncer : null,
        gatewayBase: tps['gateway-base'] ?? null,
        recording: Object.fromEntries((sc.targets ?? targets).filter((t) => t.gw).map((t) => [t.name, {
          eventsPerSec: mean(r[t.name].map((x) => x.recording), 'eventsPerSec'), eventsPerTx: mean(r[t.name].map((x) => x.recording), 'eventsPerTx'),
          lagP50S: worst(r[t.name], (l) => l.p50S), lagP99S: worst(r[t.name], (l) => l.p99S), over1s: worst(r[t.name], (l) => l.over1s),
        }])),
      };
      if (sc.latency) {
        row.p50 = Object.fromEntries(targets.map((t) => [t.name, mean(r[t.name], 'p50')]));
        row.addedLatencyP50Ms = row.p50.gateway - row.p50.direct;
      }
      rows.push(row);
    }
    const out = [];
    out.push('| scenario | direct tps | pgbouncer tps | gateway tps | gateway/pgbouncer | gateway/direct | gateway, JS relay only (tps, /pgbouncer) |');
    out.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) out.push(`| ${r.scenario} | ${r.direct.toFixed(0)} | ${r.pgbouncer?.toFixed(0) ?? '–'} | ${r.gateway.toFixed(0)} | ${r.gatewayVsPgbouncer === null ? '–' : `${r.gatewayVsPgbouncer.toFixed(2)}×`} | ${r.gatewayVsDirect.toFixed(2)}× | ${r.gatewayJs === null ? '–' : `${r.gatewayJs.toFixed(0)}, ${r.gatewayJsVsPgbouncer.toFixed(2)}×`} |`);
    if (RECORDERS) {
      out.push('');
      out.push(`recording (${RECORDERS} recorder process(es) per gateway; lag = stream publish → Postgres commit, worst round):`);
      out.push('| scenario | target | tps | events/s | events/tx | recorder lag p50 | p99 | > 1 s |');
      out.push('|---|---|---:|---:|---:|---:|---:|---:|');
      for (const r of rows) {
        for (const [name, g] of Object.entries(r.recording)) {
          const tps = name === 'gateway-base' ? r.gatewayBase : name === 'gateway-js' ? r.gatewayJs : r.gateway;
          out.push(`| ${r.scenario} | ${name} | ${tps.toFixed(0)} | ${g.eventsPerSec.toFixed(0)} | ${g.eventsPerTx.toFixed(2)} | ${fmtS(g.lagP50S)} | ${fmtS(g.lagP99S)} | ${(g.over1s * 100).toFixed(1)} % |`);
        }
      }
    }
    if (BASELINE) {
      out.push('');
      out.push(`this build vs --baseline (${BASELINE}), same run: ${rows.filter((r) => r.gatewayBase).map((r) => `${r.scenario.split(',')[0]} ${(r.gateway / r.gatewayBase).toFixed(2)}× (${r.gateway.toFixed(0)} vs ${r.gatewayBase.toFixed(0)} tps)`).join('; ')}`);
    }
    const lat = rows.find((r) => r.p50);
    out.push('');
    out.push(`p50 latency at 1 client: direct ${lat.p50.direct.toFixed(3)} ms, pgbouncer ${lat.p50.pgbouncer.toFixed(3)} ms, gateway ${lat.p50.gateway.toFixed(3)} ms → added by the gateway: ${(lat.addedLatencyP50Ms).toFixed(3)} ms (target ≤ 0.1 ms)`);
    out.push(`idle sessions: ${idle.sessions} open → gateway RSS ${idle.rssWithSessionsMiB.toFixed(1)} MiB (${idle.rssBeforeMiB.toFixed(1)} MiB before, ${idle.perSessionKiB.toFixed(1)} KiB/session; target ≤ 150 MB)`);
    const laneSessions = await gw.metric('portcullis_gateway_fast_lane_sessions_total');
    out.push(`fast lane: ${laneSessions} sessions of the gateway took it (the masking gateway's sessions never do; gateway-js has it off)`);
    const eight = rows.find((r) => r.scenario.startsWith('select-only prepared'));
    const simple = rows.find((r) => r.scenario.startsWith('select-only simple'));
    out.push(`gateway vs pgbouncer at ${CLIENTS} clients: select-only prepared ${eight.gatewayVsPgbouncer.toFixed(2)}×, simple ${simple.gatewayVsPgbouncer.toFixed(2)}× (target ≥ 0.8×, stretch ≥ 1.0×)`);
    const tlsRow = rows.find((r) => r.scenario.includes('over TLS'));
    out.push(`over TLS (production; never the fast lane): gateway ${tlsRow.gatewayVsPgbouncer.toFixed(2)}× pgbouncer, ${tlsRow.gatewayVsDirect.toFixed(2)}× direct`);
    const masking = rows.find((r) => r.scenario.startsWith('masking'));
    out.push(`masking on vs direct: ${masking.gatewayVsDirect.toFixed(2)}× (target ≥ 0.5×); ${maskCheck}`);
    process.stdout.write(out.join('\n') + '\n');
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench/results', `pg-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ seconds: SECONDS, rounds: ROUNDS, clients: CLIENTS, scale: SCALE, gatewayNodeArgs: GATEWAY_NODE_ARGS, rows, idle }, null, 2));
  } finally {
    for (const c of cleanups) {
      try { await c(); } catch (err) { log(`cleanup: ${err.message}`); }
    }
  }
}

const fmtS = (s) => (Number.isFinite(s) ? (s < 1 ? `${(s * 1000).toFixed(0)} ms` : `${s.toFixed(2)} s`) : '–');

/** Counters of a gateway and its recorders before a run. */
async function recording(g) {
  return {
    at: performance.now(),
    events: await g.metric('portcullis_gateway_events_total{result="persisted"}'),
    recorders: await Promise.all(g.recorders.map((r) => r.metrics())),
  };
}

/**
 * What a run made and how late it was recorded: the gateway's acknowledged events per second of the
 * run and per transaction, then (with recorders) waits until they have stored every one of them and
 * sums the lag histograms of the run's events.
 */
async function recorded(g, before, transactions) {
  // the last flushes of the run are acknowledged a little later: read the count once it holds still
  const count = () => g.metric('portcullis_gateway_events_total{result="persisted"}');
  let total = await count();
  for (let i = 0; i < 50; i++) {
    await sleep(200);
    const now = await count();
    if (now === total) break;
    total = now;
  }
  const events = total - before.events;
  const out = { eventsPerSec: events / SECONDS, eventsPerTx: transactions ? events / transactions : NaN, lag: null, drainS: 0 };
  if (!g.recorders.length) return out;
  const t0 = performance.now();
  const persisted = async () => {
    let n = 0;
    for (const [i, r] of g.recorders.entries()) n += ((await r.metrics()).get('recorder_events_persisted_total') ?? 0) - (before.recorders[i].get('recorder_events_persisted_total') ?? 0);
    return n;
  };
  while ((await persisted()) < events && performance.now() - t0 < 120_000) await sleep(100);
  out.drainS = (performance.now() - t0) / 1000;
  const after = await Promise.all(g.recorders.map((r) => r.metrics()));
  // one histogram over the recorders: bucket counts add up
  const sum = (maps) => {
    const m = new Map();
    for (const x of maps) for (const [k, v] of x) if (k.startsWith('recorder_lag_seconds')) m.set(k, (m.get(k) ?? 0) + v);
    return m;
  };
  out.lag = lagSummary(sum(before.recorders), sum(after));
  return out;
}

main().then(() => process.exit(0), (err) => {
  log(`pg-bench failed: ${err.stack ?? err}`);
  process.exit(1);
});
