// Long shell texts on and off the event loop. Build first: pnpm build (or pnpm exec tsc -b libs/policy)
//   node bench/command-analysis-bench.mjs [--texts 8] [--rounds 3]
// Prints, in one run: the event loop's longest stall (a 1 ms timer's worst lateness) while `texts`
// pathological ~16 KiB texts shaped like a kubectl exec command (`sh -c '<many words>'`) are decided
// inline, one per turn of the loop (as Kubernetes exec did before), and through CommandAnalysisPool (the gateway's worker, as SSH
// and Kubernetes exec do now), and their ratio. The worker's cold start is paid before measuring.
import { CommandAnalysisPool, PolicyEngine, parsePolicyDocument } from '../libs/policy/dist/index.js';
import { policyEngine } from '../libs/policy/dist/loader.js';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const TEXTS = opt('texts', 8);
const ROUNDS = opt('rounds', 3);

await policyEngine();
const doc = parsePolicyDocument({ name: 'bench', guardrails: [{ name: 'no-rm', action: 'block', match: { commands: ['rm'] } }] });
const engine = new PolicyEngine(doc);
const pool = new CommandAnalysisPool({ timeoutMs: 60_000 });
const text = (i) => `sh -c 'true ${'a '.repeat(7880)}#${i}'`;
await pool.evaluate('bench', doc, 'echo warm', { source: 'exec' });

/** runs `work` while a 1 ms timer measures how late it fires; resolves with the worst lateness (ms) */
async function worstStall(work) {
  let worst = 0;
  let last = performance.now();
  const t = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 1);
    last = now;
  }, 1);
  await new Promise((r) => setTimeout(r, 20));
  await work();
  await new Promise((r) => setTimeout(r, 20));
  clearInterval(t);
  return worst;
}

let n = 0;
const inline = [];
const worker = [];
for (let r = 0; r < ROUNDS; r++) {
  inline.push(await worstStall(async () => {
    // one text per turn of the loop, as separate requests arrive: the stall is one text's analysis
    for (let i = 0; i < TEXTS; i++) {
      engine.evaluateCommand(text(n++), { source: 'exec' });
      await new Promise((r) => setImmediate(r));
    }
  }));
  worker.push(await worstStall(async () => {
    await Promise.all(Array.from({ length: TEXTS }, () => pool.evaluate('bench', doc, text(n++), { source: 'exec' })));
  }));
}
await pool.close();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const f = (xs) => xs.map((x) => x.toFixed(0)).join(', ');
console.log(`${TEXTS} texts of ${text(0).length} chars, ${ROUNDS} rounds`);
console.log(`longest event-loop stall, inline:  ${f(inline)} ms (median ${median(inline).toFixed(0)})`);
console.log(`longest event-loop stall, worker:  ${f(worker)} ms (median ${median(worker).toFixed(0)})`);
console.log(`ratio inline/worker (medians): ${(median(inline) / Math.max(median(worker), 0.001)).toFixed(1)}x`);
