import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

export interface HttpDeps {
  registry: Registry;
  ready: () => Promise<{ ok: boolean; checks: Record<string, string> }>;
  checkpointKey: () => unknown;
  logger: Logger;
}

/** healthz, readyz, metrics and the checkpoint public key. */
export class RecorderHttpServer {
  private server: Server | null = null;

  constructor(private readonly deps: HttpDeps) {}

  async listen(port: number, host: string): Promise<number> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const send = (status: number, body: string, type = 'application/json') => {
        res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
        res.end(body);
      };
      if (req.method !== 'GET') return send(405, JSON.stringify({ error: { code: 'method_not_allowed', message: 'GET only' } }));
      switch (path) {
        case '/healthz':
          return send(200, JSON.stringify({ status: 'ok' }));
        case '/readyz':
          this.deps.ready().then(
            (r) => send(r.ok ? 200 : 503, JSON.stringify({ status: r.ok ? 'ok' : 'unavailable', checks: r.checks })),
            (err: unknown) => send(503, JSON.stringify({ status: 'unavailable', error: (err as Error).message })),
          );
          return;
        case '/metrics':
          this.deps.registry.metrics().then(
            (text) => send(200, text, this.deps.registry.contentType),
            (err: unknown) => send(500, JSON.stringify({ error: { code: 'internal', message: (err as Error).message } })),
          );
          return;
        case '/checkpoint-key':
          return send(200, JSON.stringify({ keys: [this.deps.checkpointKey()] }));
        default:
          return send(404, JSON.stringify({ error: { code: 'not_found', message: `no route ${path}` } }));
      }
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
