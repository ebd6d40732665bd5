import { randomBytes } from 'node:crypto';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANNEL, WsFrameReader, channelFrame } from '../src/kubernetes/ws-frames.js';
import { kubeSkipReason, spawnKubectl, startKubeCluster, type KubeCluster } from '../../../test/support/kube-cluster.js';
import { startStandinKubelet, type StandinKubelet } from '../../../test/support/standin-kubelet.js';
import { readSessionEvents, startHarness, waitFor, type Harness } from './support/harness.js';
import { GatewayKubectl, kubeConnection, poolTls } from './support/kube-gateway.js';

/**
 * Pod logs and exec through the gateway: kubectl v1.32 → gateway → real kube-apiserver v1.32 → a STAND-IN
 * KUBELET served by this test on 127.0.0.1 (there is no kubelet on these machines: a Node object's
 * status points the API server at the test's HTTPS server, which answers /containerLogs). What is
 * under test is the gateway's streaming and masking of what the API server relays, not a kubelet.
 * exec: the interactive exec below is a WebSocket client in the test offering only v4.channel.k8s.io,
 * which the API server proxies to the stand-in as it is (frame-level checks the real kubectl cannot
 * make); kubectl's own exec, attach, cp and port-forward (v5.channel.k8s.io, translated by the API
 * server to SPDY for the kubelet) are in test/k8s-exec.test.ts.
 */
const skip = kubeSkipReason();
if (skip) console.warn(`k8s-streams: skipped: ${skip}`);

describe.skipIf(!!skip)('pod logs through the gateway (stand-in kubelet)', () => {
  let cluster: KubeCluster;
  let kubelet: StandinKubelet;
  let h: Harness;
  let k: GatewayKubectl;
  let kc: string;
  let follow: { write: (l: string) => void; end: () => void } | null = null;

  beforeAll(async () => {
    cluster = await startKubeCluster();
    kubelet = await startStandinKubelet(cluster, {
      node: 'standin-node',
      logs: (_path, isFollow, write, end) => {
        write('starting\n');
        write('user alice@example.com logged in with card 4111 1111 1111 1111\n');
        if (isFollow) follow = { write, end };
        else end();
      },
    });
    for (const ns of ['default', 'kube-system']) {
      const sa = await cluster.kubectl(['create', 'sa', 'default', '-n', ns]);
      expect(sa.code, sa.stderr).toBe(0);
    }
    const etcd = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'etcd', namespace: 'kube-system' }, spec: { nodeName: 'standin-node', containers: [{ name: 'etcd', image: 'example/etcd:1' }] } };
    expect((await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(etcd) })).code).toBe(0);
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'default' }, spec: { nodeName: 'standin-node', containers: [{ name: 'app', image: 'example/web:1' }] } };
    const r = await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(pod) });
    expect(r.code, r.stderr).toBe(0);
    const tls = await poolTls();
    const policy = {
      name: 'logs',
      guardrails: [
        { name: 'no-rm', action: 'block', match: { commands: ['rm'] }, reason: 'no deleting files in pods' },
        { name: 'no-exec-kube-system', action: 'block', match: { kubernetes: { resources: ['pods/exec'], namespaces: ['kube-system'] } } },
      ],
      masking: [{ name: 'pii', detectors: ['EMAIL', 'CREDIT_CARD'], strategy: 'redact' }],
    };
    h = await startHarness({ tls, connections: [kubeConnection(cluster, { name: 'kube', policy: policy.name })], policies: [{ name: policy.name, version: 1, document: policy }] });
    k = new GatewayKubectl(cluster, tls.caPem);
    kc = k.kubeconfig(h.gateway, 'kube', await h.credential({ cn: 'kube', sub: 'carol' }));
  }, 180_000);

  afterAll(async () => {
    await h?.stop();
    await kubelet?.stop();
    await cluster?.stop();
    k?.cleanup();
  });

  it('kubectl logs: lines pass the content detectors', async () => {
    const direct = await cluster.kubectl(['logs', 'web']);
    expect(direct.stdout).toContain('alice@example.com');
    const r = await k.run(kc, ['logs', 'web']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('starting\n');
    expect(r.stdout).toContain('logged in with card');
    expect(r.stdout).not.toContain('alice@example.com');
    expect(r.stdout).not.toContain('4111 1111 1111 1111');
    expect(kubelet.requests.some((q) => q.startsWith('GET /containerLogs/default/web/app'))).toBe(true);
  });

  it('kubectl logs -f stays open and streams masked lines as they come', async () => {
    const run = spawnKubectl(cluster.bins.kubectl, ['--kubeconfig', kc, 'logs', '-f', 'web']);
    const closed = new Promise<number>((resolve) => run.proc.once('close', (c) => resolve(c ?? -1)));
    try {
      await waitFor(() => follow !== null && run.output().stdout.includes('logged in'), 15_000, 50);
      follow!.write('later: bob@example.com\n');
      await waitFor(() => run.output().stdout.includes('later: '), 15_000, 50);
      expect(run.output().stdout).not.toContain('bob@example.com');
      follow!.write('still streaming\n');
      await waitFor(() => run.output().stdout.includes('still streaming'), 15_000, 50);
      follow!.end();
      expect(await closed).toBe(0);
    } finally {
      run.proc.kill();
    }
    const events = await readSessionEvents(h, undefined, 1, 10_000);
    const logs = events.filter((e) => e.type === 'kube.request' && (e.data as { subresource?: string }).subresource === 'log');
    expect(logs.some((e) => (e.data as { phase?: string }).phase === 'start')).toBe(true);
    await waitFor(async () => (await readSessionEvents(h, undefined, 1, 5000)).some((e) => e.type === 'kube.request' && (e.data as { phase?: string; masked?: number }).phase === 'end' && ((e.data as { masked?: number }).masked ?? 0) > 0), 10_000, 200);
  });

  it('kubectl exec: a blocked command (shell guardrails) and a blocked namespace are Status objects kubectl prints', async () => {
    const rm = await k.run(kc, ['exec', 'web', '--', 'rm', '-rf', '/data']);
    expect(rm.code).toBe(1);
    expect(rm.stderr).toContain('portcullis:');
    expect(rm.stderr).toContain('no deleting files in pods');
    const ks = await k.run(kc, ['exec', '-n', 'kube-system', 'etcd', '--', 'ls']);
    expect(ks.stderr).toContain('portcullis: create pods/exec kube-system/etcd is blocked by guardrail no-exec-kube-system');
    expect(kubelet.requests.some((q) => q.startsWith('UPGRADE'))).toBe(false);
  });

  it('interactive exec over WebSocket: recorded, each line decided at its Enter (a blocked line is cleared, never run)', async () => {
    const token = await h.credential({ cn: 'kube', sub: 'carol' });
    const socket: TLSSocket = tlsConnect({ host: '127.0.0.1', port: h.gateway.kubePort, rejectUnauthorized: false });
    socket.on('error', () => undefined);
    await new Promise((r) => socket.once('secureConnect', r));
    const key = randomBytes(16).toString('base64');
    socket.write([
      'GET /k8s/kube/api/v1/namespaces/default/pods/web/exec?command=sh&stdin=true&stdout=true&tty=true HTTP/1.1',
      `Host: 127.0.0.1:${h.gateway.kubePort}`, `Authorization: Bearer ${token}`, 'Connection: Upgrade', 'Upgrade: websocket',
      'Sec-WebSocket-Version: 13', `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Protocol: v4.channel.k8s.io', '', '',
    ].join('\r\n'));
    let head = '';
    let screen = '';
    const reader = new WsFrameReader();
    socket.on('data', (b: Buffer) => {
      let rest = b;
      if (!head.includes('\r\n\r\n')) {
        const text = b.toString('latin1');
        const end = (head + text).indexOf('\r\n\r\n');
        if (end < 0) {
          head += text;
          return;
        }
        const cut = end + 4 - head.length;
        head += text.slice(0, cut);
        rest = b.subarray(cut);
      }
      for (const f of reader.push(rest)) if (f.payload[0] === CHANNEL.stdout) screen += f.payload.subarray(1).toString('utf8');
    });
    await waitFor(() => screen.includes('$ '), 15_000, 20);
    expect(head).toMatch(/^HTTP\/1\.1 101/);
    expect(head.toLowerCase()).toContain('sec-websocket-protocol: v4.channel.k8s.io');
    const type = (text: string) => socket.write(channelFrame(CHANNEL.stdin, text, true));
    socket.write(channelFrame(CHANNEL.resize, JSON.stringify({ Width: 100, Height: 30 }), true));
    type('ls /tmp\r');
    await waitFor(() => screen.includes('ran: ls /tmp'), 15_000, 20);
    type('rm -rf /data\r');
    await waitFor(() => screen.includes('portcullis: blocked'), 15_000, 20);
    type('echo ok\r');
    await waitFor(() => screen.includes('ran: echo ok'), 15_000, 20);
    type('echo alice@example.com\r');
    await waitFor(() => kubelet.ran.length === 3 && screen.split('ran: ').length === 4 && screen.endsWith('$ '), 15_000, 20);
    // what the pod printed reaches the client through the policy's content detectors
    expect(screen).not.toContain('alice@example.com');
    expect(kubelet.ran).toEqual(['ls /tmp', 'echo ok', 'echo alice@example.com']);
    socket.end(channelFrame(CHANNEL.stdin, '', true));
    socket.destroy();

    await waitFor(async () => {
      const ev = await readSessionEvents(h, undefined, 1, 5000);
      return ev.some((e) => e.type === 'terminal' && (e.data as { event?: string }).event === 'end');
    }, 15_000, 200);
    const ev = await readSessionEvents(h, undefined, 1, 5000);
    const terminal = ev.filter((e) => e.type === 'terminal');
    expect(terminal[0]!.data).toMatchObject({ event: 'start', command: 'sh' });
    expect(terminal.some((e) => (e.data as { event: string; data?: string }).event === 'r' && (e.data as { data: string }).data === '100x30')).toBe(true);
    expect(terminal.filter((e) => (e.data as { event: string }).event === 'o').map((e) => (e.data as { data: string }).data).join('')).toContain('ran: ls /tmp');
    const commands = ev.filter((e) => e.type === 'command').map((e) => e.data as { command: string; action: string; rule: string | null });
    expect(commands).toEqual(expect.arrayContaining([
      expect.objectContaining({ command: 'ls /tmp', action: 'allow' }),
      expect.objectContaining({ command: 'rm -rf /data', action: 'block', rule: 'no-rm' }),
    ]));
  });
});
