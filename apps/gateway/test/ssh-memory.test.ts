import { spawn } from 'node:child_process';
import { Client, type ClientChannel } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markerPolicy } from './support/ssh-test-policy.js';
import { startSshWorld, type SshWorld } from './support/ssh-world.js';

/**
 * A hostile SSH client must not make the gateway hold memory without bound. Against a real sshd, with
 * the ssh2 client library (and OpenSSH where it can play the part): output the client never reads
 * (stdout and stderr), input the target never reads (exec and a decided shell), many channels on one
 * connection, SFTP with many outstanding reads it never collects. Each time the gateway's own gauge
 * (portcullis_gateway_ssh_buffered_bytes: both sides of every relayed channel, held shell input,
 * socket write queues) settles under a bound of a few channel windows, and another session works.
 * And one identity cannot take the gateway's buffer memory from others: what a session holds in flight is
 * taken from the process budget (GATEWAY_BUFFER_BYTES) and from its identity's share
 * (GATEWAY_SESSION_BUFFER_BYTES) across all its connections; a connection that would go past either ends.
 */

const MiB = 1024 * 1024;
/**
 * What one stalled channel may hold in the gateway: ssh2 and OpenSSH open 2 MiB windows, and a stalled
 * flow fills the reading side's buffer (2 MiB, then no more window is granted, but what was granted
 * still arrives) and the writing side's (2 MiB before write() says stop), plus a packet or two.
 */
const PER_CHANNEL = 8 * MiB;
const MAX_CHANNELS = 8;
/** the test gateway's budget and each identity's share: a few stalled channels (~5 MiB each) fill them */
const BUDGET = 36 * MiB;
const SHARE = 24 * MiB;
/** another identity (the harness's credentials are user:carol's unless told) */
const OTHER = 'user:dave';

let w: SshWorld;
const clients: Client[] = [];

beforeAll(async () => {
  // a policy with a masker and a line model: output goes through the masker, shell lines are decided
  w = await startSshWorld({ sshPolicy: () => markerPolicy(), env: { GATEWAY_SSH_MAX_CHANNELS: String(MAX_CHANNELS), GATEWAY_BUFFER_BYTES: String(BUDGET), GATEWAY_SESSION_BUFFER_BYTES: String(SHARE) } });
}, 60_000);
afterAll(async () => {
  for (const c of clients) c.destroy();
  await w?.stop();
});

async function gauge(name = 'portcullis_gateway_ssh_buffered_bytes'): Promise<number> {
  const text = await w.h.gateway.metrics.registry.getSingleMetricAsString(name);
  const m = new RegExp(`^${name} (\\d+(?:\\.\\d+)?)$`, 'm').exec(text);
  if (!m) throw new Error(`no gauge in ${text}`);
  return Number(m[1]);
}

/** the process buffer budget in use (portcullis_gateway_buffered_bytes) */
const budgetInUse = (): Promise<number> => gauge('portcullis_gateway_buffered_bytes');

/** Waits until `check` holds (a condition, not a duration: the timeout only ends a test that would hang). */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Samples the gauge until it has not moved for `quietSamples` samples in a row (the stalled flows have
 * stalled: a gateway that kept buffering would keep it moving until the timeout) and returns the
 * highest value seen.
 */
async function settled(quietSamples = 10, timeoutMs = 90_000): Promise<{ max: number; last: number }> {
  const deadline = Date.now() + timeoutMs;
  let max = 0;
  let last = -1;
  let same = 0;
  let samples = 0;
  while (same < quietSamples || samples < 5) {
    if (Date.now() > deadline) throw new Error(`the gateway's SSH buffers never settled (last ${last} bytes, max ${max})`);
    await new Promise((r) => setTimeout(r, 200));
    const v = await gauge();
    samples++;
    max = Math.max(max, v);
    same = v === last ? same + 1 : 0;
    last = v;
  }
  return { max, last };
}

function connect(sub?: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    clients.push(c);
    c.on('ready', () => resolve(c)).on('error', reject);
    void w.h.credential({ cn: 'box', ...(sub ? { sub } : {}) }).then((password) => c.connect({ host: '127.0.0.1', port: w.port(), username: 'box', password, readyTimeout: 60_000 }));
  });
}

function exec(c: Client, command: string, opts: { pty?: boolean } = {}): Promise<ClientChannel> {
  return new Promise((resolve, reject) => c.exec(command, opts.pty ? { pty: { term: 'dumb', rows: 24, cols: 80, width: 0, height: 0 } } : {}, (err, s) => (err ? reject(err) : resolve(s))));
}

/** Another identity's session through the gateway, with real OpenSSH: it must keep working while the others stall. */
async function anotherSessionWorks(): Promise<void> {
  const r = await w.ssh(await w.h.credential({ cn: 'box', sub: OTHER }), ['echo', 'still-served'], { timeoutMs: 60_000 });
  expect(r.stdout).toBe('still-served\n');
}

/** Waits until `s` has received at least `bytes` (the flow has started), then stops reading it for good. */
function readThenStop(s: NodeJS.ReadableStream, bytes: number): Promise<void> {
  return new Promise((resolve) => {
    let n = 0;
    const on = (b: Buffer): void => {
      n += b.length;
      if (n < bytes) return;
      s.off('data', on);
      s.pause();
      resolve();
    };
    s.on('data', on);
  });
}

async function closeAll(): Promise<void> {
  for (const c of clients.splice(0)) c.end();
  // the gauge falls back once the sessions are gone
  const deadline = Date.now() + 30_000;
  while ((await gauge()) > 0) {
    if (Date.now() > deadline) throw new Error(`the gauge stayed at ${await gauge()} after the sessions ended`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('ssh: a client cannot make the gateway buffer without bound', () => {
  it('output the client never reads (cat /dev/zero on stdout, on stderr; OpenSSH whose stdout is never read): the gateway stops reading the target', async () => {
    const c = await connect();
    const out = await exec(c, 'cat /dev/zero');
    out.stderr.resume();
    const err = await exec(c, 'cat /dev/zero >&2');
    err.resume();
    await Promise.all([readThenStop(out, MiB), readThenStop(err.stderr, MiB)]);
    // OpenSSH, its stdout a pipe nobody reads
    const ssh = spawn('sshpass', ['-e', 'ssh', ...w.clientOptions(), '-p', String(w.port()), 'box@127.0.0.1', 'cat /dev/zero'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', SSHPASS: await w.h.credential({ cn: 'box' }) }, stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      await readThenStop(ssh.stdout, MiB);
      const { max } = await settled();
      console.log(`[ssh-memory] unread output, 3 channels: gateway holds at most ${(max / MiB).toFixed(2)} MiB`);
      expect(max).toBeLessThan(3 * PER_CHANNEL);
      await anotherSessionWorks();
    } finally {
      ssh.kill('SIGKILL');
    }
    await closeAll();
  }, 180_000);

  it('input the target never reads (exec sleep; a shell whose lines are decided, busy in sleep): the gateway stops reading the client', async () => {
    const c = await connect();
    const zeros = Buffer.alloc(64 * 1024);
    const upload = await exec(c, 'sleep 1000');
    upload.resume();
    upload.stderr.resume();
    // the shell path: keystrokes through the line tracker to a pty whose shell runs sleep
    const shell = await new Promise<ClientChannel>((resolve, reject) => c.shell({ term: 'dumb', rows: 24, cols: 80, width: 0, height: 0 }, (e, s) => (e ? reject(e) : resolve(s))));
    shell.resume();
    shell.write('sleep 1000\n');
    // a hostile client writes on whatever the window says: its own library queues what it cannot send
    for (let i = 0; i < 256; i++) {
      upload.write(zeros);
      shell.write(Buffer.alloc(64 * 1024, 0x61));
    }
    const { max } = await settled();
    console.log(`[ssh-memory] unread input, 2 channels (exec + shell): gateway holds at most ${(max / MiB).toFixed(2)} MiB`);
    expect(max).toBeLessThan(2 * PER_CHANNEL);
    await anotherSessionWorks();
    await closeAll();
  }, 180_000);

  it(`many channels on one connection: past ${MAX_CHANNELS} each open is refused with a reason; closing one frees a slot; other connections are served`, async () => {
    const c = await connect();
    const open: ClientChannel[] = [];
    for (let i = 0; i < MAX_CHANNELS; i++) open.push((await exec(c, 'sleep 1000')).resume());
    const refused = await exec(c, 'echo one-too-many').then(() => null, (e: Error) => e);
    expect(refused?.message).toContain(`too many open channels on this connection (at most ${MAX_CHANNELS})`);
    // a forward counts too
    const fwd = await new Promise<Error | null>((resolve) => c.forwardOut('127.0.0.1', 0, '127.0.0.1', 1, (e) => resolve(e ?? null)));
    expect(fwd?.message).toContain('too many open channels');
    const metrics = await w.h.gateway.metrics.registry.getSingleMetricAsString('portcullis_gateway_ssh_channels_refused_total');
    expect(metrics).toMatch(/portcullis_gateway_ssh_channels_refused_total\{reason="channels"\} [1-9]/);
    await anotherSessionWorks();
    // one closed: a new one opens
    const closed = new Promise((r) => open[0]!.once('close', r));
    open[0]!.close();
    await closed;
    let out = '';
    const again = await new Promise<ClientChannel>((resolve, reject) => {
      const deadline = Date.now() + 10_000;
      const attempt = (): void => {
        // the slot is given back when the gateway sees the channel's close: try again until then
        exec(c, 'echo slot-freed').then(resolve, (e: Error) => (Date.now() < deadline ? setTimeout(attempt, 100) : reject(e)));
      };
      attempt();
    });
    again.on('data', (b: Buffer) => (out += b.toString()));
    await new Promise((r) => again.once('close', r));
    expect(out).toBe('slot-freed\n');
    await closeAll();
  }, 120_000);

  // ssh2 emits a paused channel's 'close' only once its input has been read, and the gateway pauses a channel
  // whose target does not read: the client's close went unseen — the gateway kept the input it held and the
  // target's channel open until the session ended, while the channel's slot was given back (so one
  // connection could pile them up). Now the target's channel is closed (sshd still delivers what it holds
  // first: its part stays counted until then) and what the gateway held of the client's input is let go.
  it('a channel the client closes while the gateway holds its input (the target does not read): the gateway lets go of the client\'s side, the connection stays', async () => {
    const c = await connect();
    const ch = await exec(c, 'sleep 600');
    ch.resume();
    ch.stderr.resume();
    // past the target's pipe, both windows and what the gateway holds before it stops reading the client
    const chunk = Buffer.alloc(256 * 1024, 'x');
    for (let i = 0; i < 32; i++) ch.write(chunk);
    const { last } = await settled();
    expect(last).toBeGreaterThan(3 * MiB);
    ch.close();
    await until('the gateway lets go of the closed channel\'s input', async () => (await gauge()) < last - MiB);
    let out = '';
    const again = await exec(c, 'echo still-here');
    again.on('data', (b: Buffer) => (out += b.toString()));
    await new Promise((r) => again.once('close', r));
    expect(out).toBe('still-here\n');
    await closeAll();
  }, 120_000);

  // the relay stops reading the target while the client does not read; a client that then closed its
  // channel never gave the 'drain' the relay waited for: the target's channel never ended, its output held
  it('a channel the client closes while the gateway holds output it did not read: the gateway lets go of both sides', async () => {
    const c = await connect();
    const ch = await exec(c, 'cat /dev/zero');
    await readThenStop(ch, MiB);
    expect((await settled()).last).toBeGreaterThan(MiB);
    ch.close();
    await until('the gateway lets go of the closed channel\'s output', async () => (await gauge()) === 0);
    await closeAll();
  }, 120_000);

  it('SFTP with thousands of outstanding reads the client never collects: bounded, the other session served', async () => {
    const c = await connect();
    const ch = await new Promise<ClientChannel>((resolve, reject) => c.subsys('sftp', (e, s) => (e ? reject(e) : resolve(s))));
    const packet = (type: number, body: Buffer): Buffer => {
      const head = Buffer.alloc(5);
      head.writeUInt32BE(body.length + 1);
      head[4] = type;
      return Buffer.concat([head, body]);
    };
    const str = (s: string | Buffer): Buffer => {
      const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
      const l = Buffer.alloc(4);
      l.writeUInt32BE(b.length);
      return Buffer.concat([l, b]);
    };
    const u32 = (n: number): Buffer => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    // INIT, then OPEN /dev/zero for reading; read the HANDLE reply
    let inbox = Buffer.alloc(0);
    const reply = (type: number): Promise<Buffer> => new Promise((resolve) => {
      const on = (b: Buffer): void => {
        inbox = Buffer.concat([inbox, b]);
        while (inbox.length >= 5 && inbox.length >= 4 + inbox.readUInt32BE(0)) {
          const len = inbox.readUInt32BE(0);
          const p = inbox.subarray(4, 4 + len);
          inbox = inbox.subarray(4 + len);
          if (p[0] === type) {
            ch.off('data', on);
            resolve(p);
            return;
          }
        }
      };
      ch.on('data', on);
    });
    ch.write(packet(1, u32(3)));
    await reply(2); // VERSION
    ch.write(packet(3, Buffer.concat([u32(1), str('/dev/zero'), u32(1), u32(0)])));
    const h = await reply(102); // HANDLE
    const handle = h.subarray(9, 9 + h.readUInt32BE(5));
    ch.pause();
    // 4096 reads of 32 KiB (128 MiB asked for), none of the answers read
    const reads: Buffer[] = [];
    for (let id = 2; id < 4098; id++) {
      const offset = Buffer.alloc(8);
      offset.writeBigUInt64BE(BigInt((id - 2) * 32768));
      reads.push(packet(5, Buffer.concat([u32(id), str(handle), offset, u32(32768)])));
    }
    ch.write(Buffer.concat(reads));
    const { max } = await settled();
    console.log(`[ssh-memory] sftp, 4096 reads uncollected: gateway holds at most ${(max / MiB).toFixed(2)} MiB`);
    expect(max).toBeLessThan(PER_CHANNEL);
    await anotherSessionWorks();
    await closeAll();
  }, 180_000);
});

describe('ssh: one identity cannot take the gateway\'s buffer memory from others', () => {
  /** A connection of `sub` with an idle channel whose stderr shows what the gateway says when it ends it. */
  async function watched(sub?: string): Promise<{ c: Client; said: () => string; closed: Promise<unknown> }> {
    const c = await connect(sub);
    const idle = await exec(c, 'sleep 1000');
    let said = '';
    idle.stderr.on('data', (d: Buffer) => (said += d.toString()));
    idle.resume();
    return { c, said: () => said, closed: new Promise((r) => c.once('close', r)) };
  }

  /** Stalls unread `cat /dev/zero` channels round-robin over `conns` until one of them is ended; returns its index. */
  async function stallUntilOneEnds(conns: Awaited<ReturnType<typeof watched>>[]): Promise<number> {
    const ended = new Set<number>();
    conns.forEach((x, i) => void x.closed.then(() => ended.add(i)));
    for (let i = 0; i < 6 * conns.length && ended.size === 0; i++) {
      const x = conns[i % conns.length]!;
      const ch = await exec(x.c, 'cat /dev/zero').catch(() => null);
      ch?.pause();
      await settled(5);
    }
    await until('one connection ended', async () => ended.size > 0);
    return [...ended][0]!;
  }

  async function terminated(reason: string): Promise<number> {
    const text = await w.h.gateway.metrics.registry.getSingleMetricAsString('portcullis_gateway_sessions_terminated_total');
    const m = new RegExp(`^portcullis_gateway_sessions_terminated_total\\{[^}]*reason="${reason}"[^}]*\\} (\\d+)$`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  }

  it('what stalled sessions hold is taken from the budget as it grows: past its share (across connections) an identity\'s growing connection ends saying why, other identities are served, flowing sessions cost nothing, all of it comes back', async () => {
    await until('the budget is idle', async () => (await budgetInUse()) === 0);
    // A (user:carol): unread cat /dev/zero over three connections until one would take A past its share
    const a = [await watched(), await watched(), await watched()];
    const gone = await stallUntilOneEnds(a);
    expect(a[gone]!.said()).toContain('past their share of the gateway\'s buffer memory (GATEWAY_SESSION_BUFFER_BYTES');
    expect(await terminated('identity_buffer_share')).toBeGreaterThanOrEqual(1);
    expect(await budgetInUse()).toBeLessThanOrEqual(SHARE);
    // A's other connections go on, and another identity is served
    const stillOpen = await exec(a[(gone + 1) % a.length]!.c, 'echo a-goes-on');
    let a2 = '';
    stillOpen.on('data', (d: Buffer) => (a2 += d.toString()));
    await new Promise((r) => stillOpen.once('close', r));
    expect(a2).toBe('a-goes-on\n');
    await anotherSessionWorks();

    // B (another identity) stalls too: its growing connection ends at its share or at the process budget,
    // whichever comes first; the budget never goes past GATEWAY_BUFFER_BYTES and a third identity is served
    const b = [await watched(OTHER), await watched(OTHER)];
    const bGone = await stallUntilOneEnds(b);
    expect(b[bGone]!.said()).toMatch(/GATEWAY_SESSION_BUFFER_BYTES|the gateway's buffer memory \(GATEWAY_BUFFER_BYTES\) is in use by other sessions/);
    expect(await budgetInUse()).toBeLessThanOrEqual(BUDGET);
    const r = await w.ssh(await w.h.credential({ cn: 'box', sub: 'user:erin' }), ['echo', 'third-served'], { timeoutMs: 60_000 });
    expect(r.stdout).toBe('third-served\n');

    // A ends its connections: what they held comes back, and A opens and runs a command again
    for (const x of a) x.c.end();
    const again = await connect();
    let out = '';
    const ch = await exec(again, 'echo a-again');
    ch.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => ch.once('close', r));
    expect(out).toBe('a-again\n');

    // everything closed: the budget is back where it was (nothing leaked)
    await closeAll();
    await until('the budget came back to its baseline', async () => (await budgetInUse()) === 0);
  }, 240_000);
});
