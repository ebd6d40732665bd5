#!/usr/bin/env node
// `node bench/consequence-bench.mjs [--n 2000]` — what measuring a write costs (issue 20): the latency of
// a single-row UPDATE that a consequence rule measures (savepoint/transaction, count, release/commit)
// against the same UPDATE of a table no rule names, interleaved in one session through one gateway (both
// relayed in JavaScript: a policy with consequence rules keeps its sessions off the fast lane).
// Target: ≤ 0.2 ms added at p50. Needs `pnpm build` first and NATS on 127.0.0.1:4222.
import pg from 'pg';
import { startCluster, startGateway } from './lib/stack.mjs';

const argv = process.argv.slice(2);
const N = Number(argv[argv.indexOf('--n') + 1] || 2000);
const policy = {
  name: 'bench',
  guardrails: [{ name: 'big-writes', action: 'require_approval', match: { statements: ['UPDATE', 'DELETE'], tables: ['measured'], rowsAffectedOver: 100 } }],
  dynamicSql: 'block',
};

const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

const cluster = await startCluster({ maxConnections: 50 });
let gw;
try {
  const admin = new pg.Client({ connectionString: cluster.url() });
  await admin.connect();
  await admin.query('CREATE DATABASE bench');
  await admin.end();
  const db = new pg.Client({ connectionString: cluster.url('bench') });
  await db.connect();
  await db.query('CREATE TABLE measured (id int primary key, v int); CREATE TABLE plain (id int primary key, v int); INSERT INTO measured SELECT g, 0 FROM generate_series(1, 1000) g; INSERT INTO plain SELECT g, 0 FROM generate_series(1, 1000) g');
  await db.end();
  gw = await startGateway({ target: { port: cluster.port, database: 'bench' }, policy });
  const c = new pg.Client({ host: '127.0.0.1', port: gw.port, user: 'bench', password: await gw.credential(), database: 'bench', ssl: false });
  await c.connect();
  const times = { measured: [], plain: [] };
  for (let i = 0; i < N + 200; i++) {
    for (const table of i % 2 ? ['measured', 'plain'] : ['plain', 'measured']) {
      const sql = `UPDATE ${table} SET v = v + 1 WHERE id = ${(i % 1000) + 1}`;
      const t0 = process.hrtime.bigint();
      const r = await c.query(sql);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.rowCount !== 1) throw new Error(`${sql}: ${r.rowCount} rows`);
      if (i >= 200) times[table].push(ms); // the first 200 warm the decision cache and the JIT
    }
  }
  await c.end();
  const row = (name) => `${name.padEnd(9)} p50 ${pct(times[name], 50).toFixed(3)} ms  p90 ${pct(times[name], 90).toFixed(3)} ms  p99 ${pct(times[name], 99).toFixed(3)} ms`;
  console.log(`single-row UPDATE through the gateway, ${N} each, interleaved in one session`);
  console.log(row('plain'));
  console.log(row('measured'));
  const added = pct(times.measured, 50) - pct(times.plain, 50);
  console.log(`added by measuring: ${added.toFixed(3)} ms at p50 (target ≤ 0.200 ms): ${added <= 0.2 ? 'met' : 'NOT met'}`);
} finally {
  await gw?.stop().catch(() => undefined);
  await cluster.stop();
}
