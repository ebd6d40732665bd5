// SSH through the gateway vs straight to sshd, in one run on this machine (pnpm bench:ssh):
//  1. bulk transfer: scp upload of a 1 GiB file, over SFTP (scp's default) and legacy scp -O — gateway MiB/s ÷
//     direct MiB/s (target ≥ 0.5), rounds interleaved; CPU seconds per GiB of the gateway, sshd and the scp client
//  2. interactive: keystroke echo round trip in a pty shell — added p50 (target ≤ 1 ms)
//  3. idle sessions: the gateway's RSS with N authenticated, idle SSH sessions (target ≤ 300 MB at 1,000)
// Options: --mib 1024 (file size), --rounds 3, --cipher C (scp -c C on every run, e.g. aes128-gcm@openssh.com),
//          --keys 300 (keystrokes), --idle 1000 (sessions), --skip scp,echo,idle, --cpu-prof DIR (the gateway's profile)
// Needs: a built tree (pnpm build), /usr/sbin/sshd, scp, sshpass; Postgres is not used; NATS is.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, statSync, openSync, writeSync, closeSync } from 'node:fs';
import { cpus, loadavg, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { ROOT, freePort, sleep, startGateway } from './lib/stack.mjs';

const require = createRequire(join(ROOT, 'apps/gateway/package.json'));
const { Client, Server } = require('ssh2');
const protocol = await import(join(ROOT, 'libs/protocol/dist/index.js'));

const { values: opt } = parseArgs({ options: { mib: { type: 'string', default: '1024' }, rounds: { type: 'string', default: '3' }, cipher: { type: 'string', default: '' }, keys: { type: 'string', default: '300' }, idle: { type: 'string', default: '1000' }, skip: { type: 'string', default: '' }, 'cpu-prof': { type: 'string' } } });
const skip = new Set(opt.skip.split(',').filter(Boolean));
const dir = mkdtempSync(join(tmpdir(), 'portcullis-ssh-bench-'));
const cleanups = [];
const out = (line) => process.stdout.write(`${line}\n`);

async function startSshd() {
  mkdirSync('/run/sshd', { recursive: true });
  const host = protocol.generateSshEd25519('bench-sshd');
  const client = protocol.generateSshEd25519('bench-client');
  writeFileSync(join(dir, 'host'), host.privateKey, { mode: 0o600 });
  writeFileSync(join(dir, 'id'), client.privateKey, { mode: 0o600 });
  writeFileSync(join(dir, 'authorized_keys'), `${client.publicKey}\n`);
  const port = await freePort();
  const user = userInfo().username;
  writeFileSync(join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host')}`, `PidFile ${join(dir, 'sshd.pid')}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'StrictModes no', 'UsePAM no', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', user === 'root' ? 'PermitRootLogin prohibit-password' : '',
    'Subsystem sftp internal-sftp', 'PrintMotd no', 'PrintLastLog no', 'LogLevel ERROR', 'MaxStartups 100:30:200', 'MaxSessions 100',
  ].join('\n') + '\n');
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'inherit'] });
  cleanups.push(() => child.kill('SIGTERM'));
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((r) => {
      const c = new Client();
      c.on('ready', () => { c.end(); r(true); }).on('error', () => r(false)).connect({ host: '127.0.0.1', port, username: user, privateKey: client.privateKey, readyTimeout: 2000 });
    });
    if (up) break;
    await sleep(100);
  }
  return { port, user, pid: child.pid, hostPublicKey: host.publicKey.split(' ').slice(0, 2).join(' '), clientKey: client.privateKey };
}

const sshOpts = ['-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR'];

function timed(cmd, args, env = {}) {
  const t0 = process.hrtime.bigint();
  execFileSync(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** CPU seconds (user + system) a process used so far; with `children`, also its waited-for children's (sshd's per-connection processes). */
function cpuSeconds(pid, children = false) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0)) / 100;
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Round trips of single keystrokes in a pty shell (`cat` echoing): ms each. */
async function echoLatencies(connect, n) {
  const c = new Client();
  await new Promise((resolve, reject) => c.on('ready', resolve).on('error', reject).connect({ ...connect, readyTimeout: 30_000 }));
  c.setNoDelay(true); // as OpenSSH does for interactive sessions
  const stream = await new Promise((resolve, reject) => c.shell({ term: 'xterm', rows: 24, cols: 80 }, (err, s) => (err ? reject(err) : resolve(s))));
  let buf = '';
  let waiter = null;
  stream.on('data', (b) => {
    buf += b.toString('latin1');
    if (waiter) waiter();
  });
  const waitFor = (text) => new Promise((resolve) => {
    const check = () => {
      const i = buf.indexOf(text);
      if (i >= 0) {
        buf = buf.slice(i + text.length);
        waiter = null;
        resolve();
      }
    };
    waiter = check;
    check();
  });
  // no tty echo, bytes as they come: cat's output is the only echo
  stream.write('stty -echo -icanon min 1; exec cat\n');
  for (;;) {
    buf = '';
    stream.write('Z');
    const got = await Promise.race([waitFor('Z').then(() => true), sleep(1000).then(() => false)]);
    if (got) break;
  }
  await sleep(300);
  buf = '';
  const samples = [];
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  for (let i = 0; i < n; i++) {
    const ch = letters[i % letters.length];
    const t0 = process.hrtime.bigint();
    stream.write(ch);
    await waitFor(ch);
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  c.end();
  return samples.sort((a, b) => a - b);
}

async function main() {
  const sshd = await startSshd();
  const gwHost = protocol.generateSshEd25519('bench-gateway');
  const ca = protocol.generateSshEd25519('bench-ca');
  const gw = await startGateway({
    target: { port: 5432, database: 'postgres' },
    recording: 'best-effort',
    nodeArgs: opt['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', opt['cpu-prof']] : [],
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' },
    ssh: {
      hostKey: gwHost.privateKey,
      userCaPublicKey: ca.publicKey,
      connections: [{
        name: 'box', kind: 'ssh', host: '127.0.0.1', port: sshd.port, database: '', username: sshd.user, secretText: JSON.stringify({ privateKey: sshd.clientKey }),
        tls: 'disable', allowedGroups: ['engineers'], policy: null, recording: 'best-effort', approvalMode: 'wait', ssh: { hostKeys: [sshd.hostPublicKey] },
      }],
    },
  });
  cleanups.push(() => gw.stop());
  const token = gw.credential(3600, 'box');
  out(`ssh bench: sshd ${sshd.port}, gateway ssh ${gw.sshPort} (pid ${gw.pid}), ${new Date().toISOString()}`);

  if (!skip.has('scp')) {
    const mib = Number(opt.mib);
    const file = join(dir, 'payload.bin');
    const fd = openSync(file, 'w');
    const block = randomBytes(1024 * 1024);
    for (let i = 0; i < mib; i++) writeSync(fd, block);
    closeSync(fd);
    const cipher = opt.cipher ? ['-c', opt.cipher] : [];
    const dest = join(dir, 'dest.bin');
    const runs = { sftp: { direct: [], gateway: [] }, legacy: { direct: [], gateway: [] } };
    // one upload: wall seconds and CPU seconds of the gateway, sshd (its per-connection processes, reaped when scp ends) and scp (+ sshpass)
    const upload = (mode, via) => {
      const args = [...sshOpts, ...cipher, ...(mode === 'legacy' ? ['-O'] : [])];
      const before = { gw: cpuSeconds(gw.pid), sshd: cpuSeconds(sshd.pid, true), scp: cpuSeconds(process.pid, true) };
      const seconds = via === 'direct'
        ? timed('scp', [...args, '-i', join(dir, 'id'), '-P', String(sshd.port), file, `${sshd.user}@127.0.0.1:${dest}`])
        : timed('sshpass', ['-e', 'scp', ...args, '-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password', '-P', String(gw.sshPort), file, `box@127.0.0.1:${dest}`], { SSHPASS: token });
      if (statSync(dest).size !== mib * 1024 * 1024) throw new Error(`the file ${via} (${mode}) has the wrong size`);
      rmSync(dest);
      runs[mode][via].push({ seconds, gw: cpuSeconds(gw.pid) - before.gw, sshd: cpuSeconds(sshd.pid, true) - before.sshd, scp: cpuSeconds(process.pid, true) - before.scp, load: loadavg()[0] });
    };
    // the transfers block this loop (execFileSync) past the keep-alive of the metrics connection: asked again once on a closed one
    const compactionCount = () => gw.metric('portcullis_gateway_idle_compactions_total').catch(() => gw.metric('portcullis_gateway_idle_compactions_total'));
    const compactions0 = await compactionCount();
    for (let round = 0; round < Number(opt.rounds); round++) {
      // the order rotates per round, so that drift on a shared host hits both alike
      for (const mode of ['sftp', 'legacy']) for (const via of round % 2 ? ['gateway', 'direct'] : ['direct', 'gateway']) upload(mode, via);
    }
    const compactions = (await compactionCount()) - compactions0;
    const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
    const perGiB = (rs, k) => (median(rs.map((r) => r[k])) * 1024 / mib).toFixed(2);
    for (const [mode, label] of [['sftp', 'scp (SFTP)'], ['legacy', 'scp -O (legacy)']]) {
      const { direct, gateway } = runs[mode];
      const d = mib / Math.min(...direct.map((r) => r.seconds));
      const g = mib / Math.min(...gateway.map((r) => r.seconds));
      const dm = mib / median(direct.map((r) => r.seconds));
      const gm = mib / median(gateway.map((r) => r.seconds));
      out(`${label} upload ${mib} MiB${opt.cipher ? ` -c ${opt.cipher}` : ''}: direct ${d.toFixed(1)} MiB/s, gateway ${g.toFixed(1)} MiB/s, ratio ${(g / d).toFixed(2)} (target ≥ 0.5; best of ${direct.length}; medians ${dm.toFixed(1)} vs ${gm.toFixed(1)} MiB/s, ratio ${(gm / dm).toFixed(2)})`);
      out(`  CPU s per GiB (medians): gateway ${perGiB(gateway, 'gw')}; sshd ${perGiB(direct, 'sshd')} direct, ${perGiB(gateway, 'sshd')} behind the gateway; scp client ${perGiB(direct, 'scp')} direct, ${perGiB(gateway, 'scp')} to the gateway; load ${[...direct, ...gateway].map((r) => r.load.toFixed(1)).join('/')} on ${cpus().length} CPUs`);
    }
    out(`  gateway idle compactions during the transfers: ${compactions}`);
    rmSync(file, { force: true });
  }

  if (!skip.has('echo')) {
    const n = Number(opt.keys);
    const d = await echoLatencies({ host: '127.0.0.1', port: sshd.port, username: sshd.user, privateKey: sshd.clientKey }, n);
    const g = await echoLatencies({ host: '127.0.0.1', port: gw.sshPort, username: 'box', password: token }, n);
    out(`keystroke echo (${n} keys, pty + cat): direct p50 ${pct(d, 50).toFixed(3)} ms p99 ${pct(d, 99).toFixed(3)} ms; gateway p50 ${pct(g, 50).toFixed(3)} ms p99 ${pct(g, 99).toFixed(3)} ms; added p50 ${(pct(g, 50) - pct(d, 50)).toFixed(3)} ms (target ≤ 1 ms)`);
  }

  if (!skip.has('idle')) {
    // The target is an in-process ssh2 server here: 1,000 sshd processes would not fit this machine,
    // and what is measured is the gateway's memory (one upstream connection per session either way).
    const stubKey = protocol.generateSshEd25519('bench-stub');
    const stubPort = await freePort();
    const stubClient = protocol.generateSshEd25519('bench-stub-client');
    const stub = new Server({ hostKeys: [stubKey.privateKey] }, (conn) => {
      conn.on('authentication', (ctx) => ctx.accept()).on('error', () => undefined);
    });
    await new Promise((r) => stub.listen(stubPort, '127.0.0.1', r));
    cleanups.push(() => stub.close());
    await gw.stop();
    cleanups.pop();
    const gw2 = await startGateway({
      target: { port: 5432, database: 'postgres' },
      recording: 'best-effort',
      ssh: {
        hostKey: gwHost.privateKey,
        userCaPublicKey: ca.publicKey,
        connections: [{
          name: 'stub', kind: 'ssh', host: '127.0.0.1', port: stubPort, database: '', username: 'x', secretText: JSON.stringify({ privateKey: stubClient.privateKey }),
          tls: 'disable', allowedGroups: ['engineers'], policy: null, recording: 'best-effort', approvalMode: 'wait', ssh: { hostKeys: [stubKey.publicKey] },
        }],
      },
    });
    cleanups.push(() => gw2.stop());
    const n = Number(opt.idle);
    const tok = gw2.credential(3600, 'stub');
    await sleep(1000);
    const before = gw2.rssKiB();
    const clients = [];
    const t0 = Date.now();
    for (let i = 0; i < n; i += 20) {
      const batch = [];
      for (let j = i; j < Math.min(n, i + 20); j++) {
        batch.push(new Promise((resolve, reject) => {
          const c = new Client();
          c.on('ready', () => resolve(c)).on('error', reject).connect({ host: '127.0.0.1', port: gw2.sshPort, username: 'stub', password: tok, readyTimeout: 120_000, keepaliveInterval: 0 });
        }));
      }
      clients.push(...(await Promise.all(batch)));
    }
    const opened = (Date.now() - t0) / 1000;
    await sleep(3000);
    const after = gw2.rssKiB();
    out(`idle sessions: ${clients.length} authenticated SSH sessions (each with its upstream connection) opened in ${opened.toFixed(1)} s; gateway RSS ${(before / 1024).toFixed(0)} MB before, ${(after / 1024).toFixed(0)} MB with them (target ≤ 300 MB), ${((after - before) / clients.length).toFixed(0)} KiB per session`);
    for (const c of clients) c.end();
  }
}

try {
  await main();
} catch (err) {
  process.exitCode = 1;
  process.stderr.write(`ssh bench failed: ${err.stack ?? err}\n`);
} finally {
  for (const f of cleanups.reverse()) await Promise.resolve(f()).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
  setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref();
}
