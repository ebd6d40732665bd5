import { EventEmitter } from 'node:events';
import { Kvm } from '@nats-io/kv';
import { createLocalJWKSet } from 'jose';
import { configSnapshotSchema, formatIssues, natsNames, openSealed, } from '@portcullis/protocol';
export class ConfigError extends Error {
    constructor(message, options) {
        super(message, options);
        this.name = 'ConfigError';
    }
}
/**
 * Key material in a sealed secret is text: 64 hex chars or base64/base64url of the bytes.
 * Anything else is used as its UTF-8 bytes.
 */
export function decodeKeyText(text) {
    const t = text.trim();
    if (/^[0-9a-fA-F]{64}$/.test(t))
        return Buffer.from(t, 'hex');
    if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
        const b = Buffer.from(t, 'base64');
        if (b.length === 32)
            return b;
    }
    return Buffer.from(t, 'utf8');
}
/**
 * Builds an ActiveConfig from a raw snapshot: validates it, opens every sealed secret with the pool
 * key, compiles policies (reusing engines of unchanged policy versions). Throws ConfigError when
 * the snapshot as a whole is unusable (the caller keeps the last good one).
 */
export function buildActiveConfig(raw, pool, poolKey, previous, logger, lib) {
    const parsed = configSnapshotSchema.safeParse(raw);
    if (!parsed.success)
        throw new ConfigError(`invalid config snapshot: ${formatIssues(parsed.error).join('; ')}`);
    const snapshot = parsed.data;
    if (snapshot.pool !== pool)
        throw new ConfigError(`snapshot is for pool "${snapshot.pool}", not "${pool}"`);
    let eventKey;
    let maskingKey;
    try {
        eventKey = decodeKeyText(openSealed(poolKey, snapshot.eventKey, 'event-key'));
        maskingKey = decodeKeyText(openSealed(poolKey, snapshot.maskingKey, 'masking-key'));
    }
    catch (err) {
        throw new ConfigError('cannot open the snapshot keys with GATEWAY_POOL_KEY', { cause: err });
    }
    const connections = new Map();
    for (const c of snapshot.connections) {
        let password = null;
        if (c.secret) {
            try {
                password = openSealed(poolKey, c.secret, `connection:${c.name}`);
            }
            catch (err) {
                // One bad secret must not take the others down: the connection is left out (sessions to it refused).
                logger.error({ connection: c.name, err: err.message }, 'cannot open connection secret; connection disabled');
                continue;
            }
        }
        connections.set(c.name, { ...c, password });
    }
    const policies = new Map();
    const brokenPolicies = new Map();
    for (const p of snapshot.policies) {
        const prev = previous?.policies.get(p.name);
        if (prev && prev.version === p.version) {
            policies.set(p.name, prev);
            continue;
        }
        if (!lib) {
            brokenPolicies.set(p.name, 'the policy library is not loaded');
            continue;
        }
        try {
            const document = lib.parsePolicyDocument(p.document);
            const engine = new lib.PolicyEngine(document, { revision: p.version });
            const masking = document.masking;
            policies.set(p.name, { name: p.name, version: p.version, document, engine, masks: Array.isArray(masking) && masking.length > 0 });
        }
        catch (err) {
            logger.error({ policy: p.name, version: p.version, err: err.message }, 'invalid policy document; its connections refuse sessions');
            brokenPolicies.set(p.name, err.message);
        }
    }
    return {
        revision: snapshot.revision,
        snapshot,
        issuer: snapshot.issuer,
        jwks: createLocalJWKSet({ keys: snapshot.verificationKeys }),
        revoked: new Set(snapshot.revokedTokenIds),
        eventKey,
        maskingKey,
        connections,
        policies,
        brokenPolicies,
    };
}
/**
 * Watches the pool's key in the config KV bucket: the current snapshot at start, every change after.
 * Keeps the last good config when a snapshot is invalid or NATS goes away.
 * Emits 'change' (ActiveConfig) after each applied snapshot.
 */
export class ConfigStore extends EventEmitter {
    constructor(opts) {
        super();
        this.opts = opts;
        this.active = null;
        this.stopped = false;
        this.watcher = null;
        this.loop = null;
    }
    get current() {
        return this.active;
    }
    /** Applies a snapshot directly (used by the KV watch; tests may call it too). */
    apply(raw) {
        try {
            const next = buildActiveConfig(raw, this.opts.pool, this.opts.poolKey, this.active, this.opts.logger, this.opts.policyLib);
            if (this.active && next.revision < this.active.revision) {
                this.opts.logger.warn({ revision: next.revision, current: this.active.revision }, 'ignoring an older config snapshot');
                return this.active;
            }
            this.active = next;
            this.opts.logger.info({ revision: next.revision, connections: next.connections.size, policies: next.policies.size }, 'config applied');
            this.emit('change', next);
            return next;
        }
        catch (err) {
            this.opts.logger.error({ err: err.message }, 'config snapshot rejected; keeping the last good one');
            return null;
        }
    }
    /** Starts watching; resolves once the watch is set up (not when a config arrived). */
    start(nc) {
        this.loop = this.run(nc);
    }
    async run(nc) {
        const names = natsNames(this.opts.prefix);
        const key = names.configKey(this.opts.pool);
        while (!this.stopped) {
            try {
                const kv = await openBucket(nc, names.configBucket);
                const iter = await kv.watch({ key });
                this.watcher = iter;
                for await (const entry of iter) {
                    if (this.stopped)
                        break;
                    if (entry.operation !== 'PUT') {
                        this.opts.logger.warn({ op: entry.operation }, 'config key deleted; keeping the last good config');
                        continue;
                    }
                    let raw;
                    try {
                        raw = entry.json();
                    }
                    catch {
                        this.opts.logger.error({ revision: entry.revision }, 'config snapshot is not JSON; ignored');
                        continue;
                    }
                    this.apply(raw);
                }
            }
            catch (err) {
                if (this.stopped)
                    break;
                this.opts.logger.warn({ err: err.message }, 'config watch failed; retrying');
            }
            if (!this.stopped)
                await new Promise((r) => setTimeout(r, 1000).unref());
        }
    }
    /** Resolves when a config is active (or after `timeoutMs`, with null). */
    waitForConfig(timeoutMs) {
        if (this.active)
            return Promise.resolve(this.active);
        return new Promise((resolve) => {
            const t = setTimeout(() => {
                this.off('change', on);
                resolve(null);
            }, timeoutMs);
            const on = (c) => {
                clearTimeout(t);
                resolve(c);
            };
            this.once('change', on);
        });
    }
    async stop() {
        this.stopped = true;
        this.watcher?.stop();
        await this.loop?.catch(() => undefined);
    }
}
async function openBucket(nc, bucket) {
    const kvm = new Kvm(nc);
    try {
        return await kvm.create(bucket, { history: 5 });
    }
    catch {
        return await kvm.open(bucket);
    }
}
//# sourceMappingURL=config-store.js.map