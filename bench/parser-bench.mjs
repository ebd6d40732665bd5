// SQL parser benchmark (issue 18 §1). Build first: pnpm build (or pnpm exec tsc -b libs/policy)
//   pnpm bench:parser [--bad 300] [--seconds 2]
// Prints, in one run:
//  - parses/s of a ~220-character SELECT: libpg-query's own parseSync, the parser module without
//    the complexity bound, with it (what the analyser calls), the bound alone, and a worker-thread
//    parse (the design not taken: a round trip per statement);
//  - how far below the parser's own limits the bound sits, per shape of pathological SQL;
//  - memory after N statements that overflow the parser: libpg-query's one instance (leaks, then
//    fails for every statement) against the parser module (each faulting instance dropped).
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { initPolicyEngine } from '../libs/policy/dist/index.js';
import { parseSql, parseSqlUnguarded, parserHealth } from '../libs/policy/dist/sql-parser.js';
import { DEFAULT_MAX_DEPTH, statementDepth } from '../libs/policy/dist/sql-complexity.js';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const BAD = opt('bad', 300);
const SECONDS = opt('seconds', 2);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
const settle = (ms = 20) => new Promise((r) => setTimeout(r, ms));
const rss = async () => {
  for (let i = 0; i < 3; i++) { gc(); await settle(50); }
  return process.memoryUsage().rss / 2 ** 20;
};
const waitStandby = async () => {
  for (let i = 0; i < 500 && !(parserHealth().healthy && parserHealth().standby); i++) await settle(10);
};

// libpg-query's own module loads its instance at import: the "before" of this bench
const require = createRequire(new URL('../libs/policy/package.json', import.meta.url));
const libpg = require('libpg-query');
await libpg.loadModule();
await initPolicyEngine();

const sql =
  "SELECT c.id, c.name, c.email, o.total, o.created_at FROM public.customers c JOIN orders o ON o.customer_id = c.id " +
  "WHERE c.id = 42 AND c.status = 'active' AND o.total > 100 ORDER BY o.created_at DESC LIMIT 50 OFFSET 10";

function rate(fn) {
  const until = performance.now() + SECONDS * 1000;
  const cpu0 = process.cpuUsage();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() < until) { fn(); n++; }
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { perSec: n / wall, perCpuSec: n / ((cpu.user + cpu.system) / 1e6) };
}
const fmt = (n) => Math.round(n).toLocaleString('en-US').padStart(10);

console.log(`statement: ${sql.length} characters; ${SECONDS} s per row; rows interleaved twice (shared host: compare within a round)`);
console.log(`${'parses of one SELECT'.padEnd(52)} ${'/s wall'.padStart(10)} ${'/s CPU'.padStart(10)}`);
const rows = [
  ['libpg-query parseSync (before)', () => libpg.parseSync(sql)],
  ['parser module, without the bound', () => parseSqlUnguarded(sql)],
  ['parser module, with the bound (parseSql)', () => parseSql(sql)],
  ['the bound alone (statementDepth)', () => statementDepth(sql)],
];
for (const [, fn] of rows) rate(fn); // warm up (tier-up of the WebAssembly and the scanner)
const results = new Map();
for (let round = 0; round < 2; round++) {
  for (const [label, fn] of rows) {
    const r = rate(fn);
    console.log(`${label.padEnd(52)} ${fmt(r.perSec)} ${fmt(r.perCpuSec)}`);
    results.set(label, [...(results.get(label) ?? []), r.perSec]);
  }
}
const best = (label) => Math.max(...results.get(label));
console.log(`with the bound / without: ${(best('parser module, with the bound (parseSql)') / best('parser module, without the bound')).toFixed(3)}; ` +
  `module / libpg-query: ${(best('parser module, without the bound') / best('libpg-query parseSync (before)')).toFixed(3)}`);

// The design not taken: parse in a worker thread (discardable on a fault), one round trip per statement.
{
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     const lib = require(${JSON.stringify(require.resolve('libpg-query'))});
     lib.loadModule().then(() => parentPort.postMessage('ready'));
     parentPort.on('message', (s) => { try { parentPort.postMessage(lib.parseSync(s)); } catch (e) { parentPort.postMessage({ error: e.message }); } });`,
    { eval: true },
  );
  await new Promise((r) => worker.once('message', r));
  const until = performance.now() + SECONDS * 1000;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() < until) {
    await new Promise((r) => { worker.once('message', r); worker.postMessage(sql); });
    n++;
  }
  console.log(`${'worker thread, one round trip per parse'.padEnd(52)} ${fmt(n / ((performance.now() - t0) / 1000))}`);
  await worker.terminate();
}

// Margins: the largest text the bound lets through against the smallest the parser overflows on.
const terms = (n, t, sep) => Array(n).fill(t).join(sep);
const nest = (n, open, inner, close) => open.repeat(n) + inner + close.repeat(n);
const shapes = [
  ['sum 1+1+…', (n) => `SELECT ${terms(n, '1', '+')}`],
  ['NOT NOT …', (n) => `SELECT ${'NOT '.repeat(n)}true`],
  ['casts x::int::int…', (n) => `SELECT 1${'::int'.repeat(n)}`],
  ['COLLATE chain', (n) => `SELECT 'a'${' COLLATE "C"'.repeat(n)}`],
  ['nested subqueries', (n) => `SELECT ${nest(n, '(SELECT ', '1', ')')}`],
  ['UNION chain', (n) => terms(n, 'SELECT 1', ' UNION ')],
  ['JOIN chain', (n) => `SELECT * FROM t0 ${terms(n, 'JOIN t1 ON true', ' ')}`],
];
console.log(`\nbound: estimated depth ≤ ${DEFAULT_MAX_DEPTH}`);
console.log(`${'shape'.padEnd(22)} ${'bound lets'.padStart(10)} ${'parser fails'.padStart(13)} ${'margin'.padStart(7)}`);
for (const [name, make] of shapes) {
  let lo = 1;
  let hi = 4 * DEFAULT_MAX_DEPTH;
  while (hi - lo > 1) { const m = (lo + hi) >> 1; if (statementDepth(make(m)) <= DEFAULT_MAX_DEPTH) lo = m; else hi = m; }
  // smallest n that faults the parser: grown by 25 % from the bound's limit, then bisected (each fault costs an instance)
  const status = async (n) => {
    await waitStandby();
    try { parseSqlUnguarded(make(n)); return 'ok'; } catch (e) { return e?.name === 'ParserFaultError' ? 'fault' : 'syntax'; }
  };
  let a = lo;
  let b = lo;
  let s;
  do { a = b; b = Math.ceil(b * 1.25); s = await status(b); } while (s === 'ok' && b < 40000);
  if (s !== 'fault') {
    console.log(`${name.padEnd(22)} ${String(lo).padStart(10)} ${(s === 'ok' ? '> 40000' : 'none').padStart(13)} ${'—'.padStart(7)}  (${s === 'ok' ? 'no overflow' : `a syntax error from ${b} on: the grammar's own stack limit`})`);
    continue;
  }
  while (b - a > Math.max(1, a / 100)) { const m = Math.floor((a + b) / 2); if ((await status(m)) === 'fault') b = m; else a = m; }
  console.log(`${name.padEnd(22)} ${String(lo).padStart(10)} ${String(b).padStart(13)} ${(b / lo).toFixed(1).padStart(6)}×`);
}

// Memory after BAD overflowing statements (each past the bound: sent to the parser without it).
const overflow = (i) => `SELECT ${terms(25000 + i, '1', '+')}`;
await waitStandby();
const base = await rss();
{
  let ok = 0;
  const t0 = performance.now();
  for (let i = 0; i < BAD; i++) {
    await waitStandby();
    try { parseSqlUnguarded(overflow(i)); } catch { ok++; }
  }
  await waitStandby();
  const works = (() => { try { parseSql('select 1'); return 'works'; } catch (e) { return `fails: ${e.message}`; } })();
  console.log(`\nparser module: ${ok}/${BAD} overflowing statements refused in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
    `RSS ${base.toFixed(0)} → ${(await rss()).toFixed(0)} MiB; restarts ${JSON.stringify(parserHealth().restarts)}; select 1 ${works}`);
}
{
  // libpg-query's single instance, as the gateway used it before
  const before = await rss();
  const errors = new Map();
  const t0 = performance.now();
  for (let i = 0; i < BAD; i++) {
    try { libpg.parseSync(overflow(i)); } catch (e) { const k = `${e.name}: ${e.message}`.slice(0, 48); errors.set(k, (errors.get(k) ?? 0) + 1); }
  }
  const works = (() => { try { libpg.parseSync('select 1'); return 'works'; } catch (e) { return `fails: ${e.name}: ${e.message}`; } })();
  console.log(`libpg-query's instance: ${BAD} overflowing statements in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
    `RSS ${before.toFixed(0)} → ${(await rss()).toFixed(0)} MiB; ${JSON.stringify(Object.fromEntries(errors))}; select 1 ${works}`);
}
