// The floor of a Node HTTPS reverse proxy, for the Kubernetes bench to set the gateway against in the
// same run: TLS in, the path after /k8s/<name> forwarded on a keep-alive agent (the gateway's
// settings) with a fixed bearer token, the body held and sent back with one write (a watch is streamed
// instead, each chunk written as it comes, as the gateway does). No authentication, policy, masking or events. Run with fork(): sends {port} when listening, answers 'cpu' with its
// CPU time in ms. Imported, startBareProxy() runs it in the importing process (the bench runs one in
// the gateway's own process too: the same floor with that process's runtime around it).
import cluster from 'node:cluster';
import { Agent, createServer, request } from 'node:https';
import { fileURLToPath } from 'node:url';

const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);
const WATCH = /[?&]watch=(1|true)(&|$)/;

/** o: {upstream, upstreamCa, authorization, cert, key}; resolves {port, close()} when listening. */
export function startBareProxy(o) {
  const u = new URL(o.upstream);
  const agent = new Agent({ ca: o.upstreamCa, keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' });
  const server = createServer({ cert: o.cert, key: o.key, ALPNProtocols: ['http/1.1'] }, (req, res) => {
    const path = req.url.replace(/^\/k8s\/[^/]+/, '');
    const up = request({ hostname: u.hostname, port: u.port, path, method: req.method, agent, headers: { host: u.host, authorization: o.authorization, accept: req.headers.accept ?? 'application/json' } }, (ures) => {
      if (WATCH.test(path)) {
        const headers = {};
        for (const [k, v] of Object.entries(ures.headers)) if (!HOP.has(k) && k !== 'content-length') headers[k] = v;
        res.writeHead(ures.statusCode, headers);
        ures.pipe(res);
        res.on('close', () => ures.destroy());
        return;
      }
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
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: server.address().port,
    close: () => {
      server.closeAllConnections();
      server.close();
      agent.destroy();
    },
  })));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // BARE_WORKERS=N (N > 1): N processes share the port through node:cluster — does a second process gain
  // anything when the host's cores are already busy with the load, the API server and etcd?
  const workers = Number(process.env.BARE_WORKERS ?? '1');
  const cpuOf = (w) => new Promise((resolve) => {
    w.once('message', (m) => resolve(m.cpuMs));
    w.send('cpu');
  });
  const ownCpuMs = () => {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1000;
  };
  if (workers > 1 && cluster.isPrimary) {
    const forked = Array.from({ length: workers }, () => cluster.fork());
    const ports = await Promise.all(forked.map((w) => new Promise((resolve) => w.once('message', (m) => resolve(m.port)))));
    process.send({ port: ports[0] });
    process.on('message', async (m) => {
      if (m === 'cpu') process.send({ cpuMs: ownCpuMs() + (await Promise.all(forked.map(cpuOf))).reduce((a, b) => a + b, 0) });
    });
    process.on('disconnect', () => {
      for (const w of forked) w.kill();
      process.exit(0);
    });
  } else {
    const { port } = await startBareProxy(JSON.parse(process.argv[2]));
    process.send({ port });
    process.on('message', (m) => {
      if (m === 'cpu') process.send({ cpuMs: ownCpuMs() });
    });
    process.on('disconnect', () => process.exit(0));
  }
}
