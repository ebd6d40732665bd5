#!/usr/bin/env node
// An informer-like list+watch load in its own process (the benchmarks run the gateway in-process; the
// watchers' TLS and JSON parsing on the gateway's event loop would be charged to the gateway).
// Input: one JSON argument {sides: {direct: {base, authorization, ca}, gateway: {...}, …}, writer: 'direct',
// namespace, watchers, writes, rate, rounds}. Each round, on each side, `watchers` clients LIST the
// namespace's ConfigMaps then WATCH from the list's resourceVersion (allowWatchBookmarks); the writer
// then makes `writes` writes at `rate` per second (creates and updates alternately), each stamped with
// its sequence number in data.seq. Per event: receive time minus the time the write was acknowledged,
// matched by (round, seq); also from the write's sending (the apiserver's write path included). Output: one JSON line {direct: {...}, gateway: {...}} with LIST and event
// latencies (p50/p99 ms; LIST p50 of each round too), events expected and received, and the first problem seen (or none).
import { Agent, request } from 'node:https';

const o = JSON.parse(process.argv[2]);
const cmPath = `/api/v1/namespaces/${o.namespace}/configmaps`;

function call(side, agent, method, path, body, contentType = 'application/json') {
  return new Promise((resolve, reject) => {
    const u = new URL(side.base + path);
    const req = request({ hostname: u.hostname, port: u.port, path: u.pathname + u.search, method, agent, ca: side.ca, headers: { authorization: side.authorization, accept: 'application/json', ...(body ? { 'content-type': contentType } : {}) } }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** One watcher: LIST (timed), then WATCH from its resourceVersion; every event is handed to onEvent with its receive time. */
async function startWatcher(side, agent, round, onEvent, onProblem) {
  const t0 = performance.now();
  const list = await call(side, agent, 'GET', cmPath);
  const listMs = performance.now() - t0;
  if (list.status !== 200) throw new Error(`LIST ${side.base}${cmPath}: ${list.status} ${list.text.slice(0, 200)}`);
  const rv = JSON.parse(list.text).metadata.resourceVersion;
  const u = new URL(`${side.base}${cmPath}?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true&timeoutSeconds=900`);
  let pending = '';
  const req = request({ hostname: u.hostname, port: u.port, path: u.pathname + u.search, ca: side.ca, agent: false, headers: { authorization: side.authorization, accept: 'application/json' } }, (res) => {
    if (res.statusCode !== 200) onProblem(`WATCH status ${res.statusCode}`);
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
      const at = performance.now();
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (!line.trim()) continue;
        const ev = JSON.parse(line);
        if (ev.type === 'BOOKMARK') continue;
        if (ev.type === 'ERROR') {
          onProblem(`watch ERROR event: ${JSON.stringify(ev.object).slice(0, 200)}`);
          continue;
        }
        const d = ev.object?.data ?? {};
        if (Number(d.round) === round) onEvent(Number(d.seq), at);
      }
    });
    res.on('end', () => onProblem('a watch ended early'));
  });
  req.on('error', (err) => onProblem(`watch: ${err.message}`));
  req.end();
  return { listMs, stop: () => req.destroy() };
}

const names = Object.keys(o.sides);
const out = Object.fromEntries(names.map((n) => [n, { listMs: [], listByRound: [], eventMs: [], fromSendMs: [], expected: 0, received: 0, duplicates: 0 }]));
const problems = [];
const writerSide = o.sides[o.writer ?? 'direct'];
const writerAgent = new Agent({ keepAlive: true, maxSockets: 4 });
const listAgents = Object.fromEntries(names.map((n) => [n, new Agent({ keepAlive: true, maxSockets: o.watchers })]));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

for (let round = 0; round < o.rounds; round++) {
  // seq -1 is the readiness write: every watch has seen it before the timed writes start
  const acked = new Map();
  const sent = new Map();
  const seen = names.map(() => []);
  const state = [];
  let notify = () => undefined;
  let stopping = false;
  const starts = [];
  for (let w = 0; w < o.watchers; w++) {
    for (const [si, name] of names.entries()) {
      // the sides interleaved: watcher w of each side starts together
      const got = new Map();
      seen[si].push(got);
      state.push({ name, got });
      starts.push(startWatcher(o.sides[name], listAgents[name], round, (seq, at) => {
        if (got.has(seq)) out[name].duplicates++;
        else got.set(seq, at);
        notify();
      }, (p) => {
        if (!stopping) problems.push(`${name}: ${p}`);
        notify();
      }));
    }
  }
  const watchers = await Promise.all(starts);
  for (const n of names) out[n].listByRound.push([]);
  for (const [i, w] of watchers.entries()) {
    out[state[i].name].listMs.push(w.listMs);
    out[state[i].name].listByRound[round].push(w.listMs);
  }
  const waitFor = async (cond, what, ms) => {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`waited ${ms / 1000} s for ${what}`);
      await new Promise((r) => {
        notify = r;
        setTimeout(r, 200);
      });
    }
  };
  const write = async (seq) => {
    const i = seq < 0 ? 'ready' : String(seq >> 1);
    const data = { round: String(round), seq: String(seq), stamp: String(Date.now()) };
    const name = `r${round}-${i}`;
    sent.set(seq, performance.now());
    const r = seq < 0 || seq % 2 === 0
      ? await call(writerSide, writerAgent, 'POST', cmPath, JSON.stringify({ metadata: { name }, data }))
      : await call(writerSide, writerAgent, 'PATCH', `${cmPath}/${name}`, JSON.stringify({ data }), 'application/merge-patch+json');
    const at = performance.now();
    if (r.status !== 201 && r.status !== 200) throw new Error(`write ${name}: ${r.status} ${r.text.slice(0, 200)}`);
    acked.set(seq, at);
  };
  await write(-1);
  await waitFor(() => state.every((s) => s.got.has(-1)), 'every watch to see the readiness write', 120_000);
  // the timed writes, at a steady rate (a write is never overlapped by the next: one writer, as a controller)
  const start = performance.now();
  for (let seq = 0; seq < o.writes; seq++) {
    const due = start + (seq * 1000) / o.rate;
    const now = performance.now();
    if (due > now) await sleep(due - now);
    await write(seq);
  }
  // every event on every watch, or the waiting gives up (a lost event is a failure, reported below)
  try {
    await waitFor(() => state.every((s) => s.got.size === o.writes + 1), 'every watch to see every write', 120_000);
  } catch (err) {
    problems.push(err.message);
  }
  stopping = true;
  for (const w of watchers) w.stop();
  for (const s of state) {
    const r = out[s.name];
    r.expected += o.writes;
    for (const [seq, at] of s.got) {
      if (seq < 0) continue;
      r.received++;
      r.eventMs.push(at - acked.get(seq));
      r.fromSendMs.push(at - sent.get(seq));
    }
  }
  if (problems.length) break;
}
writerAgent.destroy();
for (const a of Object.values(listAgents)) a.destroy();

const q = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? +s[Math.max(0, Math.min(s.length - 1, Math.ceil(p * s.length) - 1))].toFixed(2) : null;
};
const result = {};
for (const n of names) {
  const r = out[n];
  result[n] = {
    listP50Ms: q(r.listMs, 0.5), listP99Ms: q(r.listMs, 0.99), lists: r.listMs.length,
    // round 0 lists an empty namespace on connections being opened; later rounds list every ConfigMap made before
    listP50ByRoundMs: r.listByRound.map((xs) => q(xs, 0.5)),
    eventP50Ms: q(r.eventMs, 0.5), eventP99Ms: q(r.eventMs, 0.99), eventMaxMs: q(r.eventMs, 1), eventMinMs: q(r.eventMs, 0),
    writeToEventP50Ms: q(r.fromSendMs, 0.5), writeToEventP99Ms: q(r.fromSendMs, 0.99),
    eventsExpected: r.expected, eventsReceived: r.received, duplicates: r.duplicates,
  };
}
process.stdout.write(`${JSON.stringify({ ...result, problems })}\n`);
process.exit(0);
