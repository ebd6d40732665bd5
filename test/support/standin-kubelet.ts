import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { CHANNEL, WsFrameReader, channelFrame } from '../../apps/gateway/src/kubernetes/ws-frames.js';
import { generateGatewayCa, issueGatewayServerCert } from '@portcullis/protocol';
import type { KubeCluster } from './kube-cluster.js';
import { SpdyServerConnection, spdyDictionaryFrom, type SpdyStream } from './spdy-frames.js';

/**
 * A minimal stand-in for a kubelet, for tests against a kube-apiserver that has none: an HTTPS server
 * on 127.0.0.1 that a Node object's status points at (InternalIP 127.0.0.1, kubeletEndpoint port).
 * The API server then proxies what it would send a pod's kubelet here:
 *
 * - `pods/log` → GET /containerLogs/… (plain HTTP; `logs` answers it);
 * - `pods/exec`, `pods/attach` → an upgrade of /exec/… or /attach/… to SPDY/3.1 with
 *   `X-Stream-Protocol-Version: v4.channel.k8s.io` (kube-apiserver 1.30+ translates kubectl's
 *   WebSocket `v5.channel.k8s.io` to this: its StreamTranslator), or — when the client itself offered
 *   only `v4.channel.k8s.io` over WebSocket — that WebSocket, proxied as it came;
 * - `pods/portforward` → an upgrade of /portforward/… to SPDY/3.1 (`portforward.k8s.io`), one
 *   error and one data stream per forwarded connection (kubectl 1.31+ tunnels that SPDY inside a
 *   WebSocket to the API server, which unwraps it).
 *
 * What it runs is no container: a tty exec or attach is a line "shell" that echoes what is typed,
 * runs nothing, prints `ran: <line>` at each Enter (Ctrl-U clears the line, `exit` ends it with
 * status 0); a non-tty exec runs `tar` for real in a temp root (what `kubectl cp` asks for) or
 * answers `command` (the test's); a forwarded port connects to `forward(port)` on 127.0.0.1.
 * This is not a kubelet: it serves what a test gives it, so tests say so.
 */
export interface StandinKubelet {
  node: string;
  port: number;
  /** requests the API server made, in order (`UPGRADE <url> <protocol>` for upgrades) */
  requests: string[];
  /** lines the stand-in "shell" of an exec ran (at each Enter), in order */
  ran: string[];
  stop(): Promise<void>;
}

export interface StandinOptions {
  node: string;
  logs: (path: string, follow: boolean, write: (line: string) => void, end: () => void) => void;
  /** a non-tty exec's command other than tar: its output and exit code (default: not found, 127) */
  command?: (argv: string[], stdin: string) => { stdout?: string; stderr?: string; code?: number };
  /** the directory a non-tty `tar` runs in, as the container's root (kubectl cp) */
  tarRoot?: string;
  /** the local port a forwarded pod port connects to (null: refused) */
  forward?: (port: number) => number | null;
}

export async function startStandinKubelet(cluster: KubeCluster, o: StandinOptions): Promise<StandinKubelet> {
  const ran: string[] = [];
  const ca = await generateGatewayCa('standin-kubelet');
  const cert = await issueGatewayServerCert(ca, ['127.0.0.1', 'localhost']);
  const requests: string[] = [];
  // read from the API server's binary at the first SPDY upgrade (a test that serves only logs never pays for it)
  const dict = (): Buffer => spdyDictionaryFrom(cluster.bins.apiserver);
  const server: Server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const url = new URL(req.url ?? '/', 'https://kubelet');
    if (req.method === 'GET' && url.pathname.startsWith('/containerLogs/')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      o.logs(url.pathname, url.searchParams.get('follow') === 'true', (line) => res.write(line), () => res.end());
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not served by the stand-in kubelet');
  });
  const sockets = new Set<Duplex>();
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
    const offered = [req.headers['x-stream-protocol-version'] ?? [], req.headers['sec-websocket-protocol'] ?? []].flat().join(',').split(',').map((p) => p.trim()).filter(Boolean);
    requests.push(`UPGRADE ${req.url} ${upgrade} ${offered.join(',')}`);
    const url = new URL(req.url ?? '/', 'https://kubelet');
    // the kubelet's paths: /exec/…, /attach/…, /portForward/… (as kube-apiserver 1.32 spells them)
    const kind = url.pathname.split('/')[1]?.toLowerCase();
    if (upgrade === 'spdy/3.1' && (kind === 'exec' || kind === 'attach') && offered.includes('v4.channel.k8s.io')) {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n');
      spdyExec(socket, dict(), url, kind, o, ran);
      return;
    }
    if (upgrade === 'spdy/3.1' && kind === 'portforward' && offered.includes('portforward.k8s.io')) {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n');
      spdyPortForward(socket, dict(), o);
      return;
    }
    const key = String(req.headers['sec-websocket-key'] ?? '');
    if (upgrade === 'websocket' && kind === 'exec' && key && offered.includes('v4.channel.k8s.io')) {
      wsExec(socket, key, ran);
      return;
    }
    socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const node = {
    apiVersion: 'v1', kind: 'Node', metadata: { name: o.node },
    status: { addresses: [{ type: 'InternalIP', address: '127.0.0.1' }], daemonEndpoints: { kubeletEndpoint: { Port: port } } },
  };
  const r = await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(node) });
  if (r.code !== 0) throw new Error(`cannot create the stand-in node: ${r.stderr}`);
  // a Node's status from create may be dropped by the API server: set it through the status subresource too
  await cluster.kubectl(['patch', 'node', o.node, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: node.status })]);
  return {
    node: o.node, port, requests, ran,
    stop: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** The line "shell" of a tty exec/attach: `out` shows text, `exit` ends it. */
function lineShell(out: (text: string) => void, ran: string[], exit: () => void): (text: string) => void {
  out('$ ');
  let line = '';
  return (text) => {
    for (const c of text) {
      if (c === '\r') {
        ran.push(line);
        if (line === 'exit') {
          out('\r\n');
          exit();
          return;
        }
        out(`\r\nran: ${line}\r\n$ `);
        line = '';
      } else if (c === '\x15') line = '';
      else {
        line += c;
        out(c);
      }
    }
  };
}

const SUCCESS = JSON.stringify({ metadata: {}, status: 'Success' });
function exitStatus(code: number): string {
  if (code === 0) return SUCCESS;
  return JSON.stringify({
    metadata: {}, status: 'Failure', message: `command terminated with non-zero exit code: exit status ${code}`, reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  });
}

/**
 * exec/attach over SPDY (`v4.channel.k8s.io`): the API server opens the error stream and one stream
 * per channel the request asked for (stdin with input=1, stdout with output=1, stderr with error=1
 * unless tty, resize with tty); the command starts when all are there. At the end: stdout/stderr
 * closed, the exit Status on the error stream, the connection closed.
 */
function spdyExec(socket: Duplex, dict: Buffer, url: URL, kind: string, o: StandinOptions, ran: string[]): void {
  const q = url.searchParams;
  const on = (k: string): boolean => q.get(k) === '1' || q.get(k) === 'true';
  const tty = on('tty');
  const want = ['error', ...(on('input') ? ['stdin'] : []), ...(on('output') ? ['stdout'] : []), ...(on('error') && !tty ? ['stderr'] : []), ...(tty ? ['resize'] : [])];
  const streams = new Map<string, SpdyStream>();
  let started = false;
  const conn = new SpdyServerConnection(socket, dict, (s) => {
    streams.set(s.headers.streamtype ?? '', s);
    if (!started && want.every((w) => streams.has(w))) {
      started = true;
      run();
    }
  });
  let finished = false;
  const finish = (code: number): void => {
    if (finished) return;
    finished = true;
    streams.get('stdout')?.end();
    streams.get('stderr')?.end();
    streams.get('error')!.end(exitStatus(code));
    conn.goaway();
  };
  const run = (): void => {
    const stdout = streams.get('stdout');
    const stdin = streams.get('stdin');
    if (tty) {
      const type = lineShell((t) => stdout?.write(t), ran, () => finish(0));
      stdin?.on('data', (b: Buffer) => type(b.toString('utf8')));
      stdin?.on('end', () => finish(0));
      return;
    }
    const argv = kind === 'exec' ? q.getAll('command') : [];
    if (argv[0] === 'test' && argv[1] === '-d' && argv[2]?.startsWith('/') && o.tarRoot) {
      // kubectl cp asks whether the destination is a directory before it sends the tar
      finish(isDir(`${o.tarRoot}${argv[2]}`) ? 0 : 1);
      return;
    }
    if (argv[0] === 'tar' && o.tarRoot) {
      runTar(argv, o.tarRoot, stdin, stdout, streams.get('stderr'), finish);
      return;
    }
    const input: Buffer[] = [];
    const answer = (): void => {
      const r = o.command?.(argv, Buffer.concat(input).toString('utf8')) ?? { stderr: `${argv[0] ?? ''}: not found\n`, code: 127 };
      if (r.stdout) stdout?.write(r.stdout);
      if (r.stderr) streams.get('stderr')?.write(r.stderr);
      finish(r.code ?? 0);
    };
    if (!stdin) return answer();
    stdin.on('data', (b: Buffer) => input.push(b));
    stdin.on('end', answer);
  };
}

/**
 * `tar` run for real with `root` as the container's root: `tar cf - /p` reads root/p (GNU tar drops
 * the leading `/` from member names either way), `tar xmf - -C /d` unpacks into root/d. Other flags
 * are passed as they came; absolute paths are rewritten under root.
 */
function runTar(argv: string[], root: string, stdin: SpdyStream | undefined, stdout: SpdyStream | undefined, stderr: SpdyStream | undefined, finish: (code: number) => void): void {
  const args: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-C' && argv[i + 1]?.startsWith('/')) {
      args.push('-C', `${root}${argv[++i]}`);
    } else if (a.startsWith('/')) args.push('-C', root, a.slice(1));
    else args.push(a);
  }
  const p = spawn('tar', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  p.stdout.on('data', (b: Buffer) => stdout?.write(b));
  p.stderr.on('data', (b: Buffer) => stderr?.write(b));
  p.stdin.on('error', () => undefined);
  if (stdin) {
    stdin.on('data', (b: Buffer) => p.stdin.write(b));
    stdin.on('end', () => p.stdin.end());
  } else p.stdin.end();
  p.on('close', (code) => finish(code ?? 1));
}

/** port-forward over SPDY: per forwarded connection an error and a data stream (same requestID); data ↔ TCP. */
function spdyPortForward(socket: Duplex, dict: Buffer, o: StandinOptions): void {
  const errors = new Map<string, SpdyStream>();
  new SpdyServerConnection(socket, dict, (s) => {
    const id = s.headers.requestid ?? '';
    if (s.headers.streamtype === 'error') {
      errors.set(id, s);
      return;
    }
    if (s.headers.streamtype !== 'data') return;
    const port = Number(s.headers.port);
    const local = o.forward?.(port) ?? null;
    if (local === null) {
      errors.get(id)?.end(`stand-in kubelet: nothing listens on port ${port}`);
      s.end();
      return;
    }
    const tcp = netConnect(local, '127.0.0.1');
    tcp.on('data', (b: Buffer) => s.write(b));
    tcp.on('end', () => {
      s.end();
      errors.get(id)?.end();
    });
    tcp.on('error', (err) => {
      errors.get(id)?.end(`stand-in kubelet: ${err.message}`);
      s.end();
    });
    s.on('data', (b: Buffer) => tcp.write(b));
    s.on('end', () => tcp.end());
  });
}

/** exec over WebSocket (`v4.channel.k8s.io`, which the API server proxies as it comes): the line shell. */
function wsExec(socket: Duplex, key: string, ran: string[]): void {
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n`);
  const type = lineShell((text) => void socket.write(channelFrame(CHANNEL.stdout, text, false)), ran, () => {
    socket.write(channelFrame(CHANNEL.error, SUCCESS, false));
    socket.end();
  });
  const reader = new WsFrameReader();
  socket.on('data', (b: Buffer) => {
    for (const f of reader.push(b)) {
      if (f.opcode === 8) {
        socket.end();
        return;
      }
      if (f.payload[0] === CHANNEL.stdin) type(f.payload.subarray(1).toString('utf8'));
    }
  });
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
