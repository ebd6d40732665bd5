import { parentPort } from 'node:worker_threads';
import { policyEngine } from './loader.js';
import type { PolicyDocument } from './policy-document.js';
import type { CommandRequest, PolicyEngine } from './policy-engine.js';

/**
 * The worker thread of CommandAnalysisPool: decides shell commands with the policy engine, off the
 * event loop that relays every session. A policy is sent once per (key) and its engine kept.
 */

export type AnalysisMessage =
  | { kind: 'policy'; key: string; document: PolicyDocument }
  | { kind: 'command'; id: number; key: string; text: string; req: CommandRequest };

const engines = new Map<string, PolicyEngine>();

// loading the library (its SQL parser's WASM) is no analysis time: the pool starts its clock after this
void policyEngine().then(
  () => parentPort!.postMessage({ ready: true }),
  (err: unknown) => parentPort!.postMessage({ ready: false, error: (err as Error).message }),
);
const MAX_ENGINES = 64;

parentPort!.on('message', (m: AnalysisMessage) => {
  void (async () => {
    const lib = await policyEngine();
    if (m.kind === 'policy') {
      if (engines.size >= MAX_ENGINES) engines.delete(engines.keys().next().value!);
      engines.set(m.key, new lib.PolicyEngine(m.document));
      return;
    }
    const engine = engines.get(m.key);
    if (!engine) return parentPort!.postMessage({ id: m.id, error: 'unknown policy' });
    const started = performance.now();
    const decision = engine.evaluateCommand(m.text, m.req);
    // the analysis's own time: the pool refuses a slow one even when its answer beat the pool's timer
    parentPort!.postMessage({ id: m.id, decision, ms: performance.now() - started });
  })().catch((err: unknown) => {
    if (m.kind === 'command') parentPort!.postMessage({ id: m.id, error: (err as Error).message });
  });
});
