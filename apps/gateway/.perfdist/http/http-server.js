import { createServer } from 'node:http';
/** healthz (alive), readyz (config received), metrics (Prometheus text). */
export function createHttpServer(metrics, health) {
    return createServer((req, res) => {
        const url = (req.url ?? '/').split('?')[0];
        if (req.method !== 'GET' && req.method !== 'HEAD') {
            res.writeHead(405, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'method_not_allowed', message: 'GET only' } }));
            return;
        }
        if (url === '/healthz') {
            res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok' }));
        }
        else if (url === '/readyz') {
            const r = health.ready();
            res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: r.ready ? 'ready' : 'not_ready', ...r.detail }));
        }
        else if (url === '/metrics') {
            metrics.registry.metrics().then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text), () => res.writeHead(500).end());
        }
        else {
            res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'not_found', message: 'not found' } }));
        }
    });
}
export function listen(server, port, host) {
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
            server.off('error', reject);
            resolve(server.address().port);
        });
    });
}
//# sourceMappingURL=http-server.js.map