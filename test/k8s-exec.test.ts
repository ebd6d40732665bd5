import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSessionEvents, waitFor } from '../apps/gateway/test/support/harness.js';
import { GatewayKubectl, kubeConnection, poolTls } from '../apps/gateway/test/support/kube-gateway.js';
import { startApprovalsStack, type ApprovalsStack } from './support/approvals-stack.js';
import { kubeSkipReason, spawnKubectl, startKubeCluster, type KubeCluster } from './support/kube-cluster.js';
import { startStandinKubelet, type StandinKubelet } from './support/standin-kubelet.js';

const run = promisify(execFile);

/**
 * exec, attach, cp and port-forward with the REAL kubectl v1.32 through the gateway to the real
 * kube-apiserver v1.32, which relays them to a STAND-IN KUBELET served by this test (there is no
 * kubelet on these machines: a Node object's status points the API server at the test's HTTPS
 * server, test/support/standin-kubelet.ts). What the pieces speak, as the stand-in saw it:
 *
 *   kubectl ──WebSocket v5.channel.k8s.io──▶ gateway ──same──▶ kube-apiserver ──SPDY/3.1 v4.channel.k8s.io──▶ stand-in
 *   kubectl port-forward ──WebSocket SPDY/3.1+portforward.k8s.io──▶ gateway ──▶ kube-apiserver ──SPDY/3.1──▶ stand-in
 *
 * (the API server's stream translator turns kubectl's WebSocket into SPDY towards the kubelet). The
 * stand-in's tty "shell" echoes what is typed and prints `ran: <line>` at each Enter; its `tar` runs
 * for real in a temp root (kubectl cp). Interactive exec runs in a pty (tmux), decided line by line
 * as an SSH shell is, and its recording is read back with the real `asciinema`.
 */
const skip = kubeSkipReason();
if (skip) console.warn(`k8s-exec: skipped: ${skip}`);

describe.skipIf(!!skip)('kubectl exec / attach / cp / port-forward through the gateway (stand-in kubelet)', () => {
  let cluster: KubeCluster;
  let kubelet: StandinKubelet;
  let s: ApprovalsStack;
  let k: GatewayKubectl;
  let kc: string;
  let conn: string;
  let auditor: string;
  let echo: Server;
  const root = mkdtempSync(join(tmpdir(), 'k8s-exec-root-'));
  const sock = `portcullis-kexec-${randomBytes(3).toString('hex')}`;
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', sock, ...args], { encoding: 'utf8' });
  const pane = (name: string) => tmux('capture-pane', '-p', '-t', name);
  /** the pane with its scrollback, wrapped lines joined: a message the rest of a long echo scrolled away is in it */
  const paneHistory = (name: string) => tmux('capture-pane', '-p', '-J', '-S', '-', '-t', name);
  /** waits until the pane shows `text` (or, with `history`, showed it); a timeout says what the pane showed */
  const seen = async (name: string, text: string, timeoutMs = 30_000, history = false): Promise<void> => {
    const read = history ? paneHistory : pane;
    try {
      await waitFor(() => read(name).includes(text), timeoutMs, 50);
    } catch {
      throw new Error(`pane ${name} never showed ${JSON.stringify(text)}; it shows:\n${pane(name)}`);
    }
  };

  beforeAll(async () => {
    cluster = await startKubeCluster();
    mkdirSync(join(root, 'tmp'));
    writeFileSync(join(root, 'tmp', 'in-pod.txt'), 'written in the pod\n');
    // what a forwarded pod port reaches: an echo server that prefixes what it got
    echo = createServer((c) => c.on('data', (b: Buffer) => c.write(`echo:${b.toString()}`)));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    kubelet = await startStandinKubelet(cluster, {
      node: 'standin-node',
      logs: (_p, _f, write, end) => {
        write('log line\n');
        end();
      },
      tarRoot: root,
      // a long command answers with its length only (its analysis is under test, not the masking of its echo)
      command: (argv) => ({ stdout: argv.join(' ').length > 1024 ? `long command of ${argv.join(' ').length} characters\n` : `${argv.join(' ')}\n` }),
      forward: (port) => (port === 8080 ? (echo.address() as AddressInfo).port : null),
    });
    for (const ns of ['default', 'kube-system']) expect((await cluster.kubectl(['create', 'sa', 'default', '-n', ns])).code).toBe(0);
    for (const [ns, name] of [['default', 'web'], ['kube-system', 'etcd']] as const) {
      const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns }, spec: { nodeName: 'standin-node', containers: [{ name: 'app', image: 'example/app:1', stdin: true, tty: true }] } };
      expect((await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(pod) })).code).toBe(0);
      // port-forward and attach want a running pod: the status a kubelet would report
      const status = { status: { phase: 'Running', containerStatuses: [{ name: 'app', image: 'example/app:1', imageID: '', ready: true, restartCount: 0, state: { running: { startedAt: '2026-01-01T00:00:00Z' } } }] } };
      const r = await cluster.kubectl(['patch', 'pod', name, '-n', ns, '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
      expect(r.code, r.stderr).toBe(0);
    }

    const tls = await poolTls();
    s = await startApprovalsStack({ timeoutSeconds: 60, harness: { tls } });
    conn = `${s.connection}-k8s`;
    const policy = {
      name: `${conn}-policy`,
      guardrails: [
        { name: 'no-rm', action: 'block', match: { commands: ['rm'] }, reason: 'no deleting files in pods' },
        { name: 'restarts-need-approval', action: 'require_approval', match: { commands: ['systemctl'] }, reason: 'restarts need a second pair of eyes' },
        { name: 'no-forward-kube-system', action: 'block', match: { kubernetes: { resources: ['pods/portforward'], namespaces: ['kube-system'] } }, reason: 'no tunnels into the control plane' },
      ],
      masking: [{ name: 'pii', detectors: ['EMAIL'], strategy: 'redact' }],
      approval: { approvers: [s.approverGroup], timeoutSeconds: 60 },
    };
    await s.h.putSnapshot({
      connections: [...s.h.snapshotInput.connections, kubeConnection(cluster, { name: conn, policy: policy.name })],
      policies: [...s.h.snapshotInput.policies, { name: policy.name, version: 1, document: policy }],
    });
    k = new GatewayKubectl(cluster, tls.caPem);
    kc = k.kubeconfig(s.h.gateway, conn, await s.credential({ cn: conn, sub: 'carol-kexec' }));

    await s.startRecorder();
    auditor = await s.auditorToken();
  }, 180_000);

  afterAll(async () => {
    try {
      tmux('kill-server');
    } catch {
      // not running
    }
    if (s) {
      await s.prisma.approval.deleteMany({ where: { connection: conn } }).catch(() => undefined);
      await s.stop();
    }
    await kubelet?.stop();
    await cluster?.stop();
    echo?.close();
    k?.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  /** kubectl in a tmux pane (a real pty), 100x30 */
  const inPane = (name: string, args: string[], env: Record<string, string> = {}, kubeconfig = kc): void => {
    const envArgs = Object.entries({ HOME: k.dir, KUBECACHEDIR: join(k.dir, 'cache'), ...env }).flatMap(([a, b]) => ['-e', `${a}=${b}`]);
    tmux('new-session', '-d', '-s', name, '-x', '100', '-y', '30', ...envArgs, 'sh', '-c', `${cluster.bins.kubectl} --kubeconfig ${kubeconfig} ${args.join(' ')}; echo "kubectl exited $?"; sleep 600`);
  };

  it('kubectl exec -it: each line decided at its Enter (allowed, blocked and cleared, held for approval), recorded as asciicast', async () => {
    const ranBefore = kubelet.ran.length;
    inPane('shell', ['exec', '-it', 'web', '--', 'sh']);
    await seen('shell', '$');
    tmux('send-keys', '-t', 'shell', 'ls /tmp', 'Enter');
    await seen('shell', 'ran: ls /tmp');
    tmux('send-keys', '-t', 'shell', 'rm -rf /data', 'Enter');
    await seen('shell', 'portcullis: blocked by no-rm: no deleting files in pods');
    // the held Enter: the line waits for an approver, then runs in the same session
    tmux('send-keys', '-t', 'shell', 'systemctl restart app', 'Enter');
    await seen('shell', 'needs approval (restarts-need-approval)');
    expect(kubelet.ran.slice(ranBefore)).toEqual(['ls /tmp']);
    let held: { id: string } | undefined;
    await waitFor(async () => !!(held = (await s.prisma.approval.findFirst({ where: { connection: conn, status: 'pending' }, select: { id: true } })) ?? undefined), 20_000, 50);
    expect((await s.decide(held!.id, 'approve', 'go')).status).toBe(200);
    await seen('shell', 'ran: systemctl restart app');
    tmux('send-keys', '-t', 'shell', 'echo alice@example.com', 'Enter');
    await waitFor(() => kubelet.ran.length === ranBefore + 3, 20_000, 50);
    tmux('send-keys', '-t', 'shell', 'exit', 'Enter');
    await seen('shell', 'kubectl exited 0');
    const screen = pane('shell');
    // what the pod printed passed the content detectors on its way to the terminal (the echo of the
    // keystrokes themselves may come a character at a time, and is the caller's own input: not asserted)
    expect(screen).toContain('ran: echo [REDACTED]');
    expect(screen).not.toContain('ran: echo alice@example.com');
    // the blocked line was cleared in the pod's shell (Ctrl-U), never run
    expect(kubelet.ran.slice(ranBefore)).toEqual(['ls /tmp', 'systemctl restart app', 'echo alice@example.com', 'exit']);
    // the API server relayed kubectl's WebSocket v5 as SPDY to the (stand-in) kubelet
    expect(kubelet.requests).toContainEqual(expect.stringMatching(/^UPGRADE \/exec\/default\/web\/app\?command=sh&.*tty=1 spdy\/3\.1 v5\.channel\.k8s\.io,v4\.channel\.k8s\.io/));

    // the decisions and the terminal, in the session's events
    let sessionId = '';
    await waitFor(async () => {
      const events = await readSessionEvents(s.h, undefined, 1);
      const cmd = events.find((e) => e.type === 'command' && (e.data as { command?: string }).command === 'systemctl restart app');
      if (!cmd) return false;
      sessionId = String(cmd.sessionId);
      return events.some((e) => e.sessionId === sessionId && e.type === 'terminal' && (e.data as { event?: string }).event === 'end');
    }, 20_000, 100);
    const events = await readSessionEvents(s.h, sessionId, 1);
    const commands = events.filter((e) => e.type === 'command').map((e) => e.data as { command: string; action: string; rule: string | null; approved?: boolean });
    expect(commands).toEqual(expect.arrayContaining([
      expect.objectContaining({ command: 'ls /tmp', action: 'allow' }),
      expect.objectContaining({ command: 'rm -rf /data', action: 'block', rule: 'no-rm' }),
      expect.objectContaining({ command: 'systemctl restart app', action: 'require_approval', rule: 'restarts-need-approval', approved: true }),
    ]));

    // GET /v1/sessions/{id}/recording.cast: asciicast v2 that the real asciinema plays back
    await waitFor(async () => {
      const r = await fetch(`${s.api.apiUrl}/v1/sessions/${sessionId}/recording.cast`, { headers: { Authorization: `Bearer ${auditor}` } });
      return r.status === 200 && (await r.text()).includes('ran: echo');
    }, 20_000, 200);
    const res = await fetch(`${s.api.apiUrl}/v1/sessions/${sessionId}/recording.cast`, { headers: { Authorization: `Bearer ${auditor}` } });
    const cast = await res.text();
    const [header, ...frames] = cast.trimEnd().split('\n').map((l) => JSON.parse(l) as unknown);
    expect(header).toMatchObject({ version: 2, width: 100, height: 30 });
    const output = (frames as [number, string, string][]).filter((f) => f[1] === 'o').map((f) => f[2]).join('');
    expect(output).toContain('ran: ls /tmp');
    expect(output).toContain('portcullis: blocked by no-rm');
    expect(output).toContain('ran: echo [REDACTED]');
    expect(output).not.toContain('ran: echo alice@example.com');
    const file = join(root, 'exec.cast');
    writeFileSync(file, cast);
    // asciinema cat wants a terminal: a pty from script, without its LF → CR LF translation
    const { stdout } = await run('script', ['-qec', `stty -onlcr; asciinema cat '${file}'`, '/dev/null'], { env: { ...process.env, LANG: 'C.UTF-8' } });
    expect(stdout).toContain('ran: systemctl restart app');
    expect(stdout).toBe(output);
  }, 180_000);

  it('kubectl attach -it: the same terminal decisions and recording', async () => {
    const ranBefore = kubelet.ran.length;
    inPane('attach', ['attach', '-it', 'web']);
    // kubectl prints its "If you don't see a command prompt" hint; the stand-in's prompt follows
    await seen('attach', '$');
    tmux('send-keys', '-t', 'attach', 'rm -rf /', 'Enter');
    await seen('attach', 'portcullis: blocked by no-rm');
    tmux('send-keys', '-t', 'attach', 'uptime', 'Enter');
    await seen('attach', 'ran: uptime');
    tmux('send-keys', '-t', 'attach', 'exit', 'Enter');
    await seen('attach', 'kubectl exited 0');
    expect(kubelet.ran.slice(ranBefore)).toEqual(['uptime', 'exit']);
    expect(kubelet.requests).toContainEqual(expect.stringMatching(/^UPGRADE \/attach\/default\/web\/app\?.*tty=1 spdy\/3\.1/));
    await waitFor(async () => (await readSessionEvents(s.h, undefined, 1)).some((e) => e.type === 'terminal' && (e.data as { event?: string; stream?: string }).event === 'start' && String((e.data as { stream?: string }).stream).startsWith('attach-')), 20_000, 100);
  }, 120_000);

  it('kubectl exec pod -- cmd: decided by the shell guardrails; stdin and exit codes pass', async () => {
    const ok = await k.run(kc, ['exec', 'web', '--', 'echo', 'hello']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('echo hello\n');
    const rm = await k.run(kc, ['exec', 'web', '--', 'rm', '-rf', '/data']);
    expect(rm.code).toBe(1);
    expect(rm.stderr).toContain('portcullis:');
    expect(rm.stderr).toContain('no deleting files in pods');
    expect(kubelet.requests.some((q) => q.includes('command=rm'))).toBe(false);
  }, 60_000);

  /** the gateway's count of shell texts its analysis worker decided, off the event loop (scraped from /metrics) */
  const workerAnalyses = async (): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${s.h.gateway.httpPort}/metrics`)).text();
    return Number(/^portcullis_gateway_command_analyses_total\{result="decided"\} (\d+)$/m.exec(text)?.[1] ?? 0);
  };

  it('pathological long exec commands and exec -it lines are analysed off the event loop: another kubectl session keeps working', async () => {
    const other = k.kubeconfig(s.h.gateway, conn, await s.credential({ cn: conn, sub: 'dave-kexec' }));
    // ~16 KiB scripts of many words (under maxCommandBytes): hundreds of milliseconds each to parse and analyse
    const script = (i: number) => `true ${'a '.repeat(7880)}#${i}`;
    const before = await workerAnalyses();
    const burst = Promise.all(Array.from({ length: 8 }, (_, i) => k.run(kc, ['exec', 'web', '--', 'sh', '-c', script(i)])));
    // the other session's commands run while those are analysed
    for (let i = 0; i < 3; i++) {
      const r = await k.run(other, ['exec', 'web', '--', 'echo', `alive-${i}`]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`echo alive-${i}\n`);
    }
    for (const r of await burst) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^long command of \d+ characters\n$/);
    }
    // each was decided in the analysis worker, not on the gateway's loop
    expect((await workerAnalyses()) - before).toBeGreaterThanOrEqual(8);

    // an interactive exec's long line (pasted into kubectl's terminal): decided at its Enter in the worker, then run
    const ranBefore = kubelet.ran.length;
    const line = `true ${'b '.repeat(5000)}#line`;
    const afterExec = await workerAnalyses();
    inPane('long', ['exec', '-it', 'web', '--', 'sh']);
    await seen('long', '$');
    const pasted = join(root, 'long-line.txt');
    writeFileSync(pasted, line);
    tmux('load-buffer', '-b', 'long', pasted);
    tmux('paste-buffer', '-d', '-b', 'long', '-t', 'long');
    tmux('send-keys', '-t', 'long', 'Enter');
    await waitFor(() => kubelet.ran.length > ranBefore, 30_000, 50);
    expect(kubelet.ran.slice(ranBefore)).toEqual([line]);
    tmux('send-keys', '-t', 'long', 'exit', 'Enter');
    await seen('long', 'kubectl exited 0');
    expect((await workerAnalyses()) - afterExec).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it('an analysis that does not finish fails closed: the long exec command and exec -it line are refused, saying why', async () => {
    // a gateway of the same pool whose analysis worker may take 1 ms per text: every long text times out
    const g = await s.h.startGateway({ GATEWAY_COMMAND_ANALYSIS_TIMEOUT_MS: '1' });
    const kc2 = k.kubeconfig(g, conn, await s.credential({ cn: conn, sub: 'erin-kexec' }));
    const text = `true ${'c '.repeat(5000)}#timeout`;
    const r = await k.run(kc2, ['exec', 'web', '--', 'sh', '-c', text]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('portcullis: command too complex: analysing it took longer than 1 ms');
    expect(kubelet.requests.some((q) => q.includes('timeout'))).toBe(false);
    // short commands are decided on the event loop as before
    const ok = await k.run(kc2, ['exec', 'web', '--', 'echo', 'short']);
    expect(ok.code, ok.stderr).toBe(0);

    const ranBefore = kubelet.ran.length;
    inPane('slow', ['exec', '-it', 'web', '--', 'sh'], {}, kc2);
    await seen('slow', '$');
    const pasted = join(root, 'slow-line.txt');
    writeFileSync(pasted, text);
    tmux('load-buffer', '-b', 'slow', pasted);
    tmux('paste-buffer', '-d', '-b', 'slow', '-t', 'slow');
    tmux('send-keys', '-t', 'slow', 'Enter');
    // the worker that timed out was ended: a new one loads the policy library first (seconds on a loaded host).
    // The refusal is printed when the Enter reaches the gateway, which can be before the rest of the 10 KB
    // line's echo has come back from the pod: that echo then scrolls it off the screen — read the scrollback
    await seen('slow', 'portcullis: blocked by command-too-complex', 120_000, true);
    expect(paneHistory('slow')).toContain('command too complex: analysing it took longer than 1 ms');
    tmux('send-keys', '-t', 'slow', 'exit', 'Enter');
    await seen('slow', 'kubectl exited 0');
    // the line was cleared in the pod's shell, never run
    expect(kubelet.ran.slice(ranBefore)).toEqual(['exit']);
    expect(g.commandAnalysis.counts.refused).toBeGreaterThanOrEqual(2);
  }, 300_000);

  it('kubectl cp (exec tar) both ways', async () => {
    const out = join(root, 'copied.txt');
    const down = await k.run(kc, ['cp', 'web:/tmp/in-pod.txt', out]);
    expect(down.code, down.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('written in the pod\n');
    const local = join(root, 'local.txt');
    writeFileSync(local, 'sent from kubectl\n');
    const up = await k.run(kc, ['cp', local, 'web:/tmp/uploaded.txt']);
    expect(up.code, up.stderr).toBe(0);
    expect(readFileSync(join(root, 'tmp', 'uploaded.txt'), 'utf8')).toBe('sent from kubectl\n');
    // a binary file (every byte value, invalid UTF-8 included) arrives byte for byte both ways. The download
    // is the pod's output, masked by this world's EMAIL detector, which reads bytes as Latin-1 letters: random
    // bytes hold an "address" by chance (q\xf6@F.Q\xea\xe6 — 4 of 25 downloads of 70 KB were masked): the
    // random part has no '@' (as ssh-policy's binary stream has no digits); the tail has every byte value, its
    // '@' after '?', which no address ends with
    const bytes = Buffer.concat([randomBytes(70_000).map((b) => (b === 0x40 ? 0x41 : b)), Buffer.from(Array.from({ length: 256 }, (_, i) => i))]);
    writeFileSync(join(root, 'tmp', 'blob.bin'), bytes);
    const blobDown = await k.run(kc, ['cp', 'web:/tmp/blob.bin', join(root, 'blob-down.bin')]);
    expect(blobDown.code, blobDown.stderr).toBe(0);
    expect(readFileSync(join(root, 'blob-down.bin')).equals(bytes)).toBe(true);
    const blobUp = await k.run(kc, ['cp', join(root, 'blob-down.bin'), 'web:/tmp/blob-up.bin']);
    expect(blobUp.code, blobUp.stderr).toBe(0);
    expect(readFileSync(join(root, 'tmp', 'blob-up.bin')).equals(bytes)).toBe(true);
  }, 60_000);

  // kubectl 1.32 tunnels port-forward's SPDY in a WebSocket (SPDY/3.1+portforward.k8s.io) and falls back to
  // plain SPDY when that upgrade fails; KUBECTL_PORT_FORWARD_WEBSOCKETS=false asks for SPDY at once. Both relay.
  it.each([
    { mode: 'WebSocket tunnel', env: {}, protocol: 'SPDY/3.1+portforward.k8s.io' },
    { mode: 'SPDY', env: { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' }, protocol: 'SPDY/3.1' },
  ])('kubectl port-forward ($mode): decided by policy, bytes flow both ways', async ({ env, protocol }) => {
    const pf = spawnKubectl(cluster.bins.kubectl, ['--kubeconfig', kc, 'port-forward', 'pod/web', '0:8080'], env);
    try {
      await waitFor(() => /Forwarding from 127\.0\.0\.1:\d+/.test(pf.output().stdout), 30_000, 50).catch(() => {
        throw new Error(`kubectl port-forward did not start: ${JSON.stringify(pf.output().stderr.slice(-300))} ${kubelet.requests.join(' | ')}`);
      });
      const port = Number(/Forwarding from 127\.0\.0\.1:(\d+)/.exec(pf.output().stdout)![1]);
      for (const msg of ['first connection', 'second connection']) {
        const c = connect(port, '127.0.0.1');
        let got = '';
        c.on('data', (b: Buffer) => (got += b.toString()));
        c.write(msg);
        await waitFor(() => got === `echo:${msg}`, 20_000, 50).catch(() => {
          throw new Error(`no echo through port-forward (got ${JSON.stringify(got)}): ${JSON.stringify(pf.output())} ${kubelet.requests.join(' | ')}`);
        });
        c.end();
      }
    } finally {
      pf.proc.kill();
    }
    expect(kubelet.requests).toContainEqual(expect.stringMatching(/^UPGRADE \/portForward\/default\/web spdy\/3\.1 portforward\.k8s\.io/));
    // the gateway relayed the protocol kubectl asked for (its start event names it), not a fallback
    await waitFor(async () => (await readSessionEvents(s.h, undefined, 1)).some((e) => e.type === 'kube.request' && (e.data as { subresource?: string; phase?: string; protocol?: string }).subresource === 'portforward'
      && (e.data as { phase?: string }).phase === 'start' && (e.data as { protocol?: string }).protocol?.toLowerCase() === protocol.toLowerCase()), 20_000, 100);
    const blocked = await k.run(kc, ['port-forward', '-n', 'kube-system', 'pod/etcd', '0:8080']);
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toContain('no tunnels into the control plane');
  }, 120_000);

  it('SPDY from kubectl (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false) is refused with a Status saying why', async () => {
    const r = await k.run(kc, ['exec', 'web', '--', 'echo', 'hello'], undefined, { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('portcullis: exec through the gateway needs the WebSocket protocol');
    expect(r.stderr).toContain('unset KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false');
  }, 60_000);
});
