import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSecureContext } from 'node:tls';
import { connect } from '@nats-io/transport-node';
import { generate as generateCert } from 'selfsigned';
import { natsNames } from '@portcullis/protocol';
import { ConfigStore } from './config/config-store.js';
import { EventPublisher, ensureEventStream } from './events/event-publisher.js';
import { startHeartbeat } from './heartbeat.js';
import { createHttpServer, listen } from './http/http-server.js';
import { GatewayMetrics } from './http/metrics.js';
import { createLogger } from './logger.js';
import { createPolicyHooks } from './policy/policy-hooks.js';
import { loadPolicyLib } from './policy/policy-lib.js';
import { ALLOW_ALL_HOOKS } from './policy/session-hooks.js';
import { CancelRegistry, sendUpstreamCancel } from './postgres/cancel-registry.js';
import { ClientSession } from './postgres/client-session.js';
import { SideConnection } from './postgres/side-connection.js';
export const GATEWAY_VERSION = '0.1.0';
/** One gateway worker: the Postgres listener, its config watch, events, cancels, health and metrics. */
export class Gateway {
    constructor(opts) {
        this.metrics = new GatewayMetrics();
        this.cancels = new CancelRegistry();
        this.sessions = new Set();
        this.nc = null;
        this.publisher = null;
        this.pgServer = null;
        this.httpServer = null;
        this.tls = null;
        this.policyLib = null;
        this.stopHeartbeat = null;
        this.cancelSub = null;
        this.startedAt = new Date().toISOString();
        this.pgPort = 0;
        this.httpPort = 0;
        /** false between a NATS disconnect and the reconnect: sessions that require recording are refused at once */
        this.natsConnected = true;
        this.env = opts.env;
        this.logger = opts.logger ?? createLogger(opts.env.LOG_LEVEL, { gateway: opts.env.GATEWAY_ID, pool: opts.env.GATEWAY_POOL });
        this.hooksFactory = opts.hooks ?? null;
        this.heartbeatMs = opts.heartbeatMs ?? 5000;
    }
    get liveSessions() {
        let n = 0;
        for (const s of this.sessions)
            if (s.live && !s.isEnded)
                n++;
        return n;
    }
    get id() {
        return this.env.GATEWAY_ID;
    }
    /** Installs a hooks factory after start (the approvals integration). */
    setHooksFactory(f) {
        this.hooksFactory = f;
    }
    async start() {
        const env = this.env;
        this.tls = await this.loadTls();
        try {
            this.policyLib = await loadPolicyLib();
        }
        catch (err) {
            this.logger.error({ err: err.message }, 'policy library failed to load; connections with a policy refuse sessions');
        }
        this.config = new ConfigStore({ prefix: env.NATS_PREFIX, pool: env.GATEWAY_POOL, poolKey: env.GATEWAY_POOL_KEY, logger: this.logger, policyLib: this.policyLib });
        this.config.on('change', (c) => this.metrics.configRevision.set(c.revision));
        this.nc = await connect({ servers: env.NATS_URL, name: `gateway-${env.GATEWAY_ID}`, maxReconnectAttempts: -1, reconnectTimeWait: 1000 });
        void this.watchNatsStatus(this.nc);
        this.publisher = new EventPublisher(this.nc, env.NATS_PREFIX, this.logger);
        void this.ensureStream();
        this.config.start(this.nc);
        this.subscribeCancels(this.nc);
        this.pgServer = createServer({ pauseOnConnect: false, noDelay: true }, (socket) => this.accept(socket));
        this.pgServer.on('error', (err) => this.logger.error({ err: err.message }, 'postgres listener error'));
        await new Promise((resolve, reject) => {
            this.pgServer.once('error', reject);
            this.pgServer.listen(env.GATEWAY_PG_PORT, env.GATEWAY_PG_HOST, () => resolve());
        });
        this.pgPort = this.pgServer.address().port;
        this.httpServer = createHttpServer(this.metrics, {
            ready: () => {
                const c = this.config.current;
                return { ready: !!c, detail: { configRevision: c?.revision ?? null, nats: this.nc?.isClosed() === false && this.natsConnected } };
            },
        });
        this.httpPort = await listen(this.httpServer, env.GATEWAY_HTTP_PORT, env.GATEWAY_HTTP_HOST);
        this.stopHeartbeat = startHeartbeat(this.nc, env.NATS_PREFIX, {
            id: env.GATEWAY_ID,
            pool: env.GATEWAY_POOL,
            version: GATEWAY_VERSION,
            address: env.GATEWAY_PUBLIC_ADDRESS ?? null,
            startedAt: this.startedAt,
            liveSessions: () => this.liveSessions,
            configRevision: () => this.config.current?.revision ?? null,
        }, this.heartbeatMs);
        this.logger.info({ pgPort: this.pgPort, httpPort: this.httpPort, pool: env.GATEWAY_POOL, tls: !!this.tls, allowPlaintext: env.GATEWAY_ALLOW_PLAINTEXT }, 'gateway listening');
    }
    async ensureStream() {
        for (let attempt = 0; this.nc && !this.nc.isClosed(); attempt++) {
            try {
                await ensureEventStream(this.nc, this.env.NATS_PREFIX);
                return;
            }
            catch (err) {
                if (attempt % 10 === 0)
                    this.logger.warn({ err: err.message }, 'cannot ensure the event stream; retrying');
                await new Promise((r) => setTimeout(r, 1000).unref());
            }
        }
    }
    async watchNatsStatus(nc) {
        for await (const s of nc.status()) {
            if (s.type === 'disconnect') {
                this.natsConnected = false;
                this.logger.warn('NATS disconnected; serving on the last config');
            }
            else if (s.type === 'reconnect') {
                this.natsConnected = true;
                this.logger.info('NATS reconnected');
            }
        }
        this.natsConnected = false; // closed
    }
    subscribeCancels(nc) {
        const subject = natsNames(this.env.NATS_PREFIX).cancel(this.env.GATEWAY_POOL);
        this.cancelSub = nc.subscribe(subject, {
            callback: (err, msg) => {
                if (err)
                    return;
                try {
                    const body = msg.json();
                    if (body.from === this.id || typeof body.pid !== 'number' || typeof body.secret !== 'string')
                        return;
                    const target = this.cancels.lookup(body.pid, Buffer.from(body.secret, 'base64'));
                    if (target) {
                        this.logger.info({ pid: body.pid, from: body.from }, 'cancel relayed from another gateway');
                        void sendUpstreamCancel(target);
                    }
                }
                catch {
                    // not ours to parse
                }
            },
        });
    }
    relayCancel(pid, secret) {
        if (!this.nc || this.nc.isClosed())
            return;
        try {
            this.nc.publish(natsNames(this.env.NATS_PREFIX).cancel(this.env.GATEWAY_POOL), JSON.stringify({ pid, secret: secret.toString('base64'), from: this.id }));
        }
        catch {
            // cancels are best effort, as in Postgres
        }
    }
    async loadTls() {
        if (this.env.GATEWAY_TLS_CERT && this.env.GATEWAY_TLS_KEY) {
            return createSecureContext({ cert: readFileSync(this.env.GATEWAY_TLS_CERT), key: readFileSync(this.env.GATEWAY_TLS_KEY) });
        }
        const pems = await generateCert([{ name: 'commonName', value: 'portcullis-gateway' }], { keySize: 2048, algorithm: 'sha256' });
        this.logger.info('using a self-signed TLS certificate (set GATEWAY_TLS_CERT/GATEWAY_TLS_KEY in production)');
        return createSecureContext({ cert: pems.cert, key: pems.private });
    }
    accept(socket) {
        const session = new ClientSession(socket, {
            gatewayId: this.id,
            pool: this.env.GATEWAY_POOL,
            logger: this.logger,
            metrics: this.metrics,
            config: () => this.config.current,
            tls: this.tls,
            allowPlaintext: this.env.GATEWAY_ALLOW_PLAINTEXT,
            cancels: this.cancels,
            relayCancel: (pid, secret) => this.relayCancel(pid, secret),
            publisher: () => this.publisher,
            recordingAvailable: () => this.natsConnected && !!this.publisher,
            hooksFor: (info) => this.hooksFor(info),
            onEnd: (s) => this.sessions.delete(s),
        });
        this.sessions.add(session);
        void session.run();
    }
    hooksFor(info) {
        let hooks = ALLOW_ALL_HOOKS;
        if (info.policy && this.policyLib) {
            hooks = createPolicyHooks({
                policy: info.policy,
                lib: this.policyLib,
                maskingKey: info.config.maskingKey,
                side: new SideConnection(info.openSide),
                logger: this.logger.child({ session: info.sessionId }),
            });
        }
        return this.hooksFactory ? this.hooksFactory(info, hooks, this) : hooks;
    }
    async stop() {
        this.stopHeartbeat?.();
        await new Promise((resolve) => (this.pgServer ? this.pgServer.close(() => resolve()) : resolve()));
        for (const s of [...this.sessions])
            s.shutdown();
        await Promise.allSettled([...this.sessions].map((s) => s.flushEvents()));
        await new Promise((resolve) => (this.httpServer ? this.httpServer.close(() => resolve()) : resolve()));
        this.httpServer?.closeAllConnections?.();
        await this.config?.stop();
        this.cancelSub?.unsubscribe();
        if (this.nc && !this.nc.isClosed())
            await this.nc.drain().catch(() => this.nc?.close());
    }
}
//# sourceMappingURL=gateway.js.map