import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { CHANNEL, WsFrameReader, channelFrame } from '../../apps/gateway/src/kubernetes/ws-frames.js';
import { generateGatewayCa, issueGatewayServerCert } from '@portcullis/protocol';
import type { KubeCluster } from './kube-cluster.js';

/**
 * A minimal stand-in for a kubelet, for tests against a kube-apiserver that has none: an HTTPS server
 * on 127.0.0.1 that a Node object's status points at (InternalIP 127.0.0.1, kubeletEndpoint port).
 * The API server then proxies `pods/log` of pods bound to that node here (GET /containerLogs/…).
 * This is not a kubelet: it serves what a test gives it, so tests say so.
 */
export interface StandinKubelet {
  node: string;
  port: number;
  /** requests the API server made, in order */
  requests: string[];
  /** lines the stand-in "shell" of an exec ran (at each Enter), in order */
  ran: string[];
  stop(): Promise<void>;
}

export async function startStandinKubelet(cluster: KubeCluster, o: { node: string; logs: (path: string, follow: boolean, write: (line: string) => void, end: () => void) => void }): Promise<StandinKubelet> {
  const ran: string[] = [];
  const ca = await generateGatewayCa('standin-kubelet');
  const cert = await issueGatewayServerCert(ca, ['127.0.0.1', 'localhost']);
  const requests: string[] = [];
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
  // exec over WebSocket (`v4.channel.k8s.io`, which the API server proxies as it comes): a terminal that
  // echoes what is typed, runs nothing, and at each Enter prints `ran: <line>`; Ctrl-U clears the line
  server.on('upgrade', (req, socket: Duplex) => {
    requests.push(`UPGRADE ${req.url}`);
    const key = String(req.headers['sec-websocket-key'] ?? '');
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!req.url?.startsWith('/exec/') || !key || !offered.includes('v4.channel.k8s.io')) {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n`);
    const out = (text: string): void => void socket.write(channelFrame(CHANNEL.stdout, text, false));
    out('$ ');
    let line = '';
    const reader = new WsFrameReader();
    socket.on('data', (b: Buffer) => {
      for (const f of reader.push(b)) {
        if (f.opcode === 8) {
          socket.end();
          return;
        }
        if (f.payload[0] !== CHANNEL.stdin) continue;
        for (const c of f.payload.subarray(1).toString('utf8')) {
          if (c === '\r') {
            ran.push(line);
            out(`\r\nran: ${line}\r\n$ `);
            line = '';
          } else if (c === '\x15') line = '';
          else {
            line += c;
            out(c);
          }
        }
      }
    });
    socket.on('error', () => undefined);
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
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
