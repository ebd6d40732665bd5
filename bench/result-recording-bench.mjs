// What recording.results costs on the data path: the same masked SELECTs through a gateway whose
// policy keeps the rows (20 rows / 64 KiB, the demo's) and through one that records counts only,
// alternated in rounds in one run, printed as statements/s and their ratio. Needs a built checkout
// (pnpm build), Postgres and NATS on their default ports.
//   node bench/result-recording-bench.mjs [--seconds 5] [--rounds 3] [--clients 4] [--rows 20]
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startGateway } from './lib/stack.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const seconds = Number(args.seconds ?? 5);
const rounds = Number(args.rounds ?? 3);
const clients = Number(args.clients ?? 4);
const rows = Number(args.rows ?? 20);
const ADMIN = 'postgresql://postgres@127.0.0.1:5432/postgres';
const target = `portcullis_rrbench_${randomBytes(3).toString('hex')}`;

const base = {
  guardrails: [],
  masking: [
    { name: 'emails', columns: ['email'], strategy: 'partial' },
    { name: 'pii', detectors: ['US_SSN', 'CREDIT_CARD', 'EMAIL'], strategy: 'redact' },
  ],
};
const policies = {
  'counts only': { name: 'counts', ...base },
  'rows kept (20 / 64 KiB)': { name: 'kept', ...base, recording: { results: { rows: 20, bytes: 64 * 1024 } } },
  ...(args.variants ? { 'rows kept (1 / 64 KiB)': { name: 'kept1', ...base, recording: { results: { rows: 1, bytes: 64 * 1024 } } } } : {}),
};

async function sql(url, text) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

async function run(gw) {
  const conns = await Promise.all(Array.from({ length: clients }, async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: gw.port, user: 'bench', password: gw.credential(), database: 'bench', ssl: false });
    await c.connect();
    return c;
  }));
  let n = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(conns.map(async (c) => {
    while (Date.now() < end) {
      await c.query(`SELECT id, name, email, notes FROM customers ORDER BY id LIMIT ${rows}`);
      n++;
    }
  }));
  await Promise.all(conns.map((c) => c.end()));
  return n / seconds;
}

await sql(ADMIN, `CREATE DATABASE ${target}`);
const gws = {};
try {
  await sql(`postgresql://postgres@127.0.0.1:5432/${target}`, `CREATE TABLE customers AS SELECT g AS id, 'Person ' || g AS name, 'p' || g || '@example.test' AS email,
    CASE WHEN g % 3 = 0 THEN 'SSN 123-45-' || lpad((g % 10000)::text, 4, '0') ELSE 'no notes for this one' END AS notes FROM generate_series(1, 1000) g`);
  for (const [label, policy] of Object.entries(policies)) gws[label] = await startGateway({ target: { port: 5432, database: target }, policy, env: { GATEWAY_KUBERNETES_PORT: '0', GATEWAY_SSH_PORT: '0' } });
  const results = Object.fromEntries(Object.keys(policies).map((k) => [k, []]));
  // the order rotates per round: a loaded host's drift falls on each gateway alike
  const labels = Object.keys(policies);
  for (let r = 0; r < rounds; r++) for (let i = 0; i < labels.length; i++) {
    const label = labels[(i + r) % labels.length];
    results[label].push(await run(gws[label]));
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const out = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.round(median(v))]));
  const [a, b] = Object.values(out); // counts only, 20 rows kept
  console.log(`masked SELECT of ${rows} rows, ${clients} clients, ${rounds} rounds of ${seconds}s (median statements/s):`);
  for (const [k, v] of Object.entries(out)) console.log(`  ${k.padEnd(26)} ${v}`);
  console.log(`  ratio rows kept / counts only: ${(b / a).toFixed(3)}`);
} finally {
  for (const gw of Object.values(gws)) await gw.stop().catch(() => undefined);
  await sql(ADMIN, `DROP DATABASE IF EXISTS ${target} WITH (FORCE)`).catch(() => undefined);
}
