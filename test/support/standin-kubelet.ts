import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
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
  stop(): Promise<void>;
}

export async function startStandinKubelet(cluster: KubeCluster, o: { node: string; logs: (path: string, follow: boolean, write: (line: string) => void, end: () => void) => void }): Promise<StandinKubelet> {
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
    node: o.node, port, requests,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
