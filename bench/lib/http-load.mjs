#!/usr/bin/env node
// A keep-alive HTTPS load generator in its own process (the benchmarks run the gateway in-process;
// a load generator on the gateway's event loop would charge the client's TLS to the gateway).
// Input: one JSON argument {url, authorization, ca, seconds, concurrency, accept?}. Output: one JSON
// line {requests, seconds, rps, p50Ms, p99Ms, errors, firstError?, cpuMs} on stdout.
import { Agent, request } from 'node:https';

const o = JSON.parse(process.argv[2]);
const u = new URL(o.url);
const agent = new Agent({ keepAlive: true, maxSockets: o.concurrency });
const lat = [];
let errors = 0;
let firstError;

function once() {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = request({ hostname: u.hostname, port: u.port, path: u.pathname + u.search, agent, ca: o.ca, headers: { authorization: o.authorization, accept: o.accept ?? 'application/json' } }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => {
        if (res.statusCode === 200) lat.push(performance.now() - t0);
        else {
          errors++;
          firstError ??= `status ${res.statusCode}`;
        }
        resolve();
      });
    });
    req.on('error', (err) => {
      errors++;
      firstError ??= err.message;
      resolve();
    });
    req.end();
  });
}

const cpu0 = process.cpuUsage();
const started = performance.now();
const end = started + o.seconds * 1000;
await Promise.all(Array.from({ length: o.concurrency }, async () => {
  while (performance.now() < end) await once();
}));
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpu0);
agent.destroy();
lat.sort((a, b) => a - b);
const q = (p) => (lat.length ? +lat[Math.min(lat.length - 1, Math.ceil(p * lat.length) - 1)].toFixed(2) : null);
process.stdout.write(`${JSON.stringify({ requests: lat.length, seconds: +seconds.toFixed(2), rps: Math.round(lat.length / seconds), p50Ms: q(0.5), p99Ms: q(0.99), errors, ...(firstError ? { firstError } : {}), cpuMs: Math.round((cpu.user + cpu.system) / 1000) })}\n`);
