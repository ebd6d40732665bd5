// The stack as `pnpm start` starts it (dev IdP, demo seed, every app), on free ports and private names,
// for end-to-end tests that drive it with real clients only. Stop it with `stop()`.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from './free-port.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ADMIN_PG = 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface RestAnswer {
  status: number;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- whatever the api answered
  text: string;
  headers: Headers;
}

export interface DemoStack {
  api: string;
  idp: string;
  gatewayPort: number;
  /** the gateway's SSH listener */
  sshPort: number;
  bootstrap: string;
  demoDb: string;
  /** the stack's own database (sessions, events, approvals) */
  databaseUrl: string;
  /** its PORTCULLIS_HOME (master key, bootstrap token…) and NATS subject prefix */
  home: string;
  natsPrefix: string;
  /** everything the stack printed so far */
  output(): string;
  rest(method: string, path: string, token: string, body?: unknown): Promise<RestAnswer>;
  stop(): Promise<void>;
}

export async function startDemoStack(tag: string): Promise<DemoStack> {
  const suffix = `${tag}${randomBytes(3).toString('hex')}`;
  const home = mkdtempSync(join(tmpdir(), `portcullis-${tag}-`));
  const db = `portcullis_e2e_${suffix}`;
  const demoDb = `portcullis_e2e_demo_${suffix}`;
  const ports = {
    API_PORT: await freePort(),
    APPROVALS_HTTP_PORT: await freePort(),
    RECORDER_HTTP_PORT: await freePort(),
    GATEWAY_HTTP_PORT: await freePort(),
    GATEWAY_PG_PORT: await freePort(),
    GATEWAY_SSH_PORT: await freePort(),
    GATEWAY_KUBERNETES_PORT: await freePort(),
    DEV_IDP_PORT: await freePort(),
  };
  let out = '';
  const stack: ChildProcess = spawn(process.execPath, [join(ROOT, 'scripts/start.mjs')], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
      PORTCULLIS_HOME: home,
      DATABASE_URL: `postgresql://postgres@127.0.0.1:5432/${db}`,
      NATS_PREFIX: `e2e${suffix}`,
      APPROVALS_QUEUE_PREFIX: `e2e${suffix}`,
      PORTCULLIS_DEMO_DB: demoDb,
      GATEWAY_ID: `e2e-${suffix}`,
      LOG_LEVEL: 'warn',
      NO_COLOR: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  stack.stdout!.on('data', (c) => (out += c));
  stack.stderr!.on('data', (c) => (out += c));

  const stop = async (): Promise<void> => {
    if (stack.exitCode === null && stack.signalCode === null) {
      const done = new Promise((r) => stack.once('exit', r));
      stack.kill('SIGINT');
      await Promise.race([done, new Promise((r) => setTimeout(r, 20_000))]);
      if (stack.exitCode === null) stack.kill('SIGKILL');
    }
    const c = new pg.Client({ connectionString: ADMIN_PG });
    await c.connect();
    for (const name of [db, demoDb]) await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
    await c.query(`DROP ROLE IF EXISTS "${demoDb}_owner"`).catch(() => undefined);
    await c.end();
    rmSync(home, { recursive: true, force: true });
  };

  const deadline = Date.now() + 240_000;
  while (!/Portcullis is ready/.test(out)) {
    if (stack.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`the stack did not start:\n${out.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const api = `http://127.0.0.1:${ports.API_PORT}`;
  const rest = async (method: string, path: string, token: string, body?: unknown): Promise<RestAnswer> => {
    const res = await fetch(`${api}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON (jsonl export) */
    }
    return { status: res.status, json, text, headers: res.headers };
  };
  return {
    api,
    idp: `http://127.0.0.1:${ports.DEV_IDP_PORT}`,
    gatewayPort: ports.GATEWAY_PG_PORT,
    sshPort: ports.GATEWAY_SSH_PORT,
    bootstrap: readFileSync(join(home, 'bootstrap-token'), 'utf8').trim(),
    demoDb,
    databaseUrl: `postgresql://postgres@127.0.0.1:5432/${db}`,
    home,
    natsPrefix: `e2e${suffix}`,
    output: () => out,
    rest,
    stop,
  };
}
