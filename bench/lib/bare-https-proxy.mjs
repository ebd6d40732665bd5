// The floor of a Node HTTPS reverse proxy, for the Kubernetes bench to set the gateway against in the
// same run: TLS in, the path after /k8s/<name> forwarded on a keep-alive agent (the gateway's
// settings) with a fixed bearer token, the body held and sent back with one write. No authentication,
// policy, masking or events. Run with fork(): sends {port} when listening, answers 'cpu' with its
// CPU time in ms.
import { Agent, createServer, request } from 'node:https';

const o = JSON.parse(process.argv[2]); // {upstream, upstreamCa, authorization, cert, key}
const u = new URL(o.upstream);
const agent = new Agent({ ca: o.upstreamCa, keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);
const server = createServer({ cert: o.cert, key: o.key, ALPNProtocols: ['http/1.1'] }, (req, res) => {
  const path = req.url.replace(/^\/k8s\/[^/]+/, '');
  const up = request({ hostname: u.hostname, port: u.port, path, method: req.method, agent, headers: { host: u.host, authorization: o.authorization, accept: req.headers.accept ?? 'application/json' } }, (ures) => {
    const parts = [];
    ures.on('data', (c) => parts.push(c));
    ures.on('end', () => {
      const body = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      const headers = {};
      for (const [k, v] of Object.entries(ures.headers)) if (!HOP.has(k)) headers[k] = v;
      headers['content-length'] = body.length;
      res.writeHead(ures.statusCode, headers);
      res.end(body);
    });
  });
  up.on('error', () => res.destroy());
  up.end();
});
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (m) => {
  if (m === 'cpu') {
    const c = process.cpuUsage();
    process.send({ cpuMs: (c.user + c.system) / 1000 });
  }
});
process.on('disconnect', () => process.exit(0));
