import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { killAllPrograms, runProgram } from './support/run-program.js';

/**
 * libpq's PQcancel (psycopg2's conn.cancel()) returns when the server closes the cancel socket. The
 * gateway must close it only once the upstream cancel was delivered: else the cancel lands on the
 * client's next statement (57014 on a `select 1`). Debian's python3-psycopg2 (installed by .ci/run).
 */
const PYTHON = '/usr/bin/python3';

const SCRIPT = String.raw`
import sys, threading, time, psycopg2, psycopg2.extensions
uri = sys.argv[1]
rounds = int(sys.argv[2])
conn = psycopg2.connect(uri)
conn.autocommit = True
out = {'busy_cancelled': 0, 'idle_cancels': 0, 'later_cancelled': 0, 'later_ok': 0, 'other': []}

def later():
    try:
        with conn.cursor() as c:
            c.execute('select 1')
            assert c.fetchone()[0] == 1
            # a statement still running when a late cancel would arrive (see the delaying proxy)
            c.execute('select 1 from pg_sleep(0.4)')
            assert c.fetchone()[0] == 1
        out['later_ok'] += 1
    except psycopg2.extensions.QueryCanceledError:
        out['later_cancelled'] += 1
    except Exception as e:
        out['other'].append(repr(e))

for i in range(rounds):
    # a running statement is cancelled; the statement right after must run
    err = []
    def sleeper():
        try:
            with conn.cursor() as c:
                c.execute('select pg_sleep(5)')
        except Exception as e:
            err.append(e)
    t = threading.Thread(target=sleeper)
    t.start()
    time.sleep(0.15)
    conn.cancel()
    t.join()
    if err and isinstance(err[0], psycopg2.extensions.QueryCanceledError):
        out['busy_cancelled'] += 1
    else:
        out['other'].append('sleep not cancelled: ' + repr(err))
    later()
    # a cancel sent while idle does nothing (Postgres ignores it); the next statement must run
    conn.cancel()
    out['idle_cancels'] += 1
    later()
print(out)
`;

/**
 * The target behind a proxy that takes CONNECT_DELAY_MS to open each new connection (a target across a
 * network): a cancel the gateway forwards on a new connection then arrives that much later, so a
 * gateway that answers its client before delivering it lets the client's next statement start first.
 */
const CONNECT_DELAY_MS = 150;
function delayingProxy(port: number): Promise<Server> {
  const sockets = new Set<Socket>();
  // half-open both ways: the gateway ends its side of a cancel connection before the server closes its own
  const server = createServer({ allowHalfOpen: true }, (client) => {
    sockets.add(client);
    client.pause();
    client.on('error', () => undefined);
    setTimeout(() => {
      const up = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
      sockets.add(up);
      up.on('error', () => client.destroy());
      client.on('close', () => up.destroy());
      up.on('connect', () => {
        client.pipe(up);
        up.pipe(client);
        client.resume();
      });
    }, CONNECT_DELAY_MS);
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

let h: Harness;
let proxy: Server;
beforeAll(async () => {
  proxy = await delayingProxy(5432);
  h = await startHarness({ connection: { port: (proxy.address() as { port: number }).port } });
});
afterAll(async () => {
  killAllPrograms();
  await h?.stop();
  proxy?.close();
});

describe('cancel through the gateway with libpq (psycopg2)', () => {
  it('a cancel never reaches the statement after the one it meant (20 rounds, busy and idle)', async () => {
    const uri = h.connectionUri(await h.credential(), undefined, { sslmode: 'disable' });
    const r = await runProgram(PYTHON, ['-c', SCRIPT, uri, '20'], { timeoutMs: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout.trim().replace(/'/g, '"')) as Record<string, unknown>;
    expect(out).toEqual({ busy_cancelled: 20, idle_cancels: 20, later_cancelled: 0, later_ok: 40, other: [] });
  }, 150_000);
});
