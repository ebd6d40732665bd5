// Policy engine benchmark. Build first: pnpm exec tsc -b libs/policy
//   node bench/policy-bench.mjs
// Prints decisions/s (cached by exact text, cached through literal-free shapes, uncached) on a
// ~200-character SELECT, and masking throughput (MB/s of DataRow-like values, every detector on):
// maskRow alone, and the gateway's path per DataRow (decode the payload, mask, re-encode the row
// when a value changed). MB/s is per wall-clock second; on a shared host look at "cpu" too
// (the same work per second of this process's CPU time).
import { randomBytes } from 'node:crypto';
import {
  PolicyEngine, createMaskingPlan, evaluate, initPolicyEngine, parsePolicyDocument,
} from '../libs/policy/dist/index.js';
import { decodeDataRow, encodeDataRow } from '../libs/protocol/dist/index.js';

await initPolicyEngine();

const doc = parsePolicyDocument({
  name: 'bench',
  guardrails: [
    { name: 'no-destructive-ddl', action: 'block', match: { statements: ['DROP', 'TRUNCATE', 'ALTER', 'GRANT', 'REVOKE', 'CREATE ROLE', 'ALTER ROLE'] } },
    { name: 'no-session-killing', action: 'block', match: { functions: ['pg_terminate_backend', 'pg_cancel_backend'] } },
    { name: 'no-copy-program', action: 'block', match: { copy: 'program' } },
    { name: 'bulk-writes', action: 'require_approval', match: { statements: ['DELETE', 'UPDATE'], unbounded: true } },
  ],
  masking: [
    { name: 'emails', columns: ['email'], strategy: 'partial' },
    { name: 'pii', detectors: ['CREDIT_CARD', 'US_SSN', 'EMAIL', 'PHONE', 'IBAN', 'AWS_ACCESS_KEY', 'JWT', 'IPV4'], strategy: 'redact' },
  ],
});

const select = (id, status, total, n = '') =>
  `SELECT c.id, c.name, c.email, o.total, o.created_at${n} FROM public.customers c JOIN orders o ON o.customer_id = c.id ` +
  `WHERE c.id = ${id} AND c.status = '${status}' AND o.total > ${total} ORDER BY o.created_at DESC LIMIT 50`;
console.log(`statement: ${select(1, 'active', 100).length} characters`);

function rate(label, n, fn) {
  fn(Math.min(n, 2000)); // warm up
  const t = process.hrtime.bigint();
  fn(n);
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  console.log(`${label.padEnd(44)} ${Math.round(n / s).toLocaleString('en-US').padStart(12)} /s`);
  return n / s;
}

// 1. cached: the same text again and again
{
  const engine = new PolicyEngine(doc, { revision: 1 });
  const sql = select(42, 'active', 100);
  rate('decisions, cached (same text)', 3_000_000, (n) => { for (let i = 0; i < n; i++) engine.evaluate(sql); });
}

// 2. literal-varying: a new text every time (pgbench -S, ORMs with inlined literals)
{
  const engine = new PolicyEngine(doc, { revision: 1 });
  const N = 400_000;
  const texts = Array.from({ length: N }, (_, i) => select(i * 7919, `s${i % 1000}`, i % 5000));
  let hits = 0;
  rate('decisions, literal-varying (shape cache)', N, (n) => {
    hits = 0;
    for (let i = 0; i < n; i++) if (engine.evaluate(texts[i]).cached) hits++;
  });
  console.log(`${''.padEnd(44)} ${hits}/${N} served from cache`);
}

// 3. uncached: a different statement shape every time (evaluate() pure function, no cache)
{
  const N = 20_000;
  const texts = Array.from({ length: N }, (_, i) => select(1, 'active', 100, `, c.col_${i}`));
  rate('decisions, uncached (parse every time)', N, (n) => { for (let i = 0; i < n; i++) evaluate(texts[i], doc); });
}

// 4. masking: DataRow-like values, every detector on
{
  const fields = [
    { name: 'id', tableOid: 1, columnAttr: 1, typeOid: 23, format: 0 },
    { name: 'name', tableOid: 1, columnAttr: 2, typeOid: 25, format: 0 },
    { name: 'email', tableOid: 1, columnAttr: 3, typeOid: 1043, format: 0 },
    { name: 'phone', tableOid: 1, columnAttr: 4, typeOid: 25, format: 0 },
    { name: 'notes', tableOid: 1, columnAttr: 5, typeOid: 25, format: 0 },
    { name: 'created_at', tableOid: 1, columnAttr: 6, typeOid: 1184, format: 0 },
  ];
  const plan = createMaskingPlan(doc, fields, { hmacKey: randomBytes(32) });
  const notes = [
    'Customer asked about delivery times, prefers morning slots. Order 4111111111111112 was delayed twice.',
    'Called from +44 20 7946 0958 about invoice 2024-118, card 4111 1111 1111 1111 to be charged next week.',
    'No issues. Upgraded to plan v2.4.1 on 2024-03-02; contact via the web form only, never by phone.',
    'Refund sent to DE89 3704 0044 0532 0130 00; ticket closed by agent 17 after confirmation email.',
  ];
  const rows = Array.from({ length: 1000 }, (_, i) => [
    Buffer.from(String(i)), Buffer.from(`Person ${i} Example`), Buffer.from(`person${i}@example.com`),
    Buffer.from(`415-555-01${String(i % 100).padStart(2, '0')}`), Buffer.from(notes[i % notes.length]),
    Buffer.from('2024-05-01 10:00:00+00'),
  ]);
  const bytes = rows.reduce((s, r) => s + r.reduce((t, v) => t + v.length, 0), 0);
  const masking = (label, data, size, seconds, pass) => {
    pass(); // warm up
    const t = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    let total = 0;
    let passes = 0;
    while (Number(process.hrtime.bigint() - t) < seconds * 1e9) { pass(); total += size; passes++; }
    const s = Number(process.hrtime.bigint() - t) / 1e9;
    const c = process.cpuUsage(cpu);
    const cs = (c.user + c.system) / 1e6;
    console.log(`${label.padEnd(44)} ${(total / s / 1e6).toFixed(1).padStart(12)} MB/s  (${Math.round(passes * data.length / s).toLocaleString('en-US')} rows/s; cpu ${(total / cs / 1e6).toFixed(1)} MB/s)`);
  };
  masking('masking, all detectors (DataRow values)', rows, bytes, 2, () => { for (const r of rows) plan.maskRow(r); });

  // the gateway's path: DataRow payload in, the original frame or a re-encoded one out
  const frames = rows.map((r) => encodeDataRow(r));
  const frameBytes = frames.reduce((s2, f) => s2 + f.length, 0);
  let rewritten = 0;
  masking('masking, DataRow decode + mask + re-encode', frames, frameBytes, 2, () => {
    rewritten = 0;
    for (const f of frames) {
      const r = plan.maskRow(decodeDataRow(f.subarray(5)));
      if (r.changed > 0) { encodeDataRow(r.values); rewritten++; }
    }
  });
  console.log(`${''.padEnd(44)} ${rewritten}/${frames.length} rows rewritten`);

  const clean = Array.from({ length: 1000 }, (_, i) => [
    Buffer.from(String(i)), Buffer.from(`Person ${i} Example`), Buffer.from(`person${i}@example.com`),
    Buffer.from('no phone'), Buffer.from('Customer prefers morning delivery slots and paper invoices.'), Buffer.from('2024-05-01 10:00:00+00'),
  ]);
  const cleanBytes = clean.reduce((s2, r) => s2 + r.reduce((x, v) => x + v.length, 0), 0);
  masking('masking, mostly clean text', clean, cleanBytes, 1, () => { for (const r of clean) plan.maskRow(r); });
}
