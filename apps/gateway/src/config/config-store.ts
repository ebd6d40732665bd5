import { EventEmitter } from 'node:events';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import {
  configSnapshotSchema, ensureBucket, formatIssues, natsNames, openSealed, verifyConfigSnapshot,
  type ConfigSnapshot, type ConnectionConfig, type Ed25519PublicJwk, type JwsKeyCache,
} from '@portcullis/protocol';
import type { PolicyDocument, PolicyEngine, PolicyLib } from '../core/policy-lib.js';
import type { Logger } from '../logger.js';

/** A connection of the snapshot with its secret opened. Never logged, never sent to a client. */
export interface ResolvedConnection extends ConnectionConfig {
  password: string | null;
}

export interface ResolvedPolicy {
  name: string;
  version: number;
  /** the document as validated by @portcullis/policy */
  document: PolicyDocument;
  engine: PolicyEngine;
  /** true when the document has masking rules: the relay then needs row layouts */
  masks: boolean;
}

/** The config a gateway serves with: a validated snapshot with secrets opened and policies compiled. */
export interface ActiveConfig {
  revision: number;
  snapshot: ConfigSnapshot;
  issuer: string;
  jwks: JWTVerifyGetKey;
  revoked: ReadonlySet<string>;
  /** access requests revoked before their grant's end: credentials and sessions resting on one are over */
  revokedGrants: ReadonlySet<string>;
  eventKey: Buffer;
  maskingKey: Buffer;
  connections: ReadonlyMap<string, ResolvedConnection>;
  policies: ReadonlyMap<string, ResolvedPolicy>;
  /** policies that failed to compile: connections using them refuse sessions (fail closed) */
  brokenPolicies: ReadonlyMap<string, string>;
}

export class ConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

/**
 * Key material in a sealed secret is text: 64 hex chars or base64/base64url of the bytes.
 * Anything else is used as its UTF-8 bytes.
 */
export function decodeKeyText(text: string): Buffer {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const b = Buffer.from(t, 'base64');
    if (b.length === 32) return b;
  }
  return Buffer.from(t, 'utf8');
}

/**
 * Builds an ActiveConfig from a raw snapshot: validates it, opens every sealed secret with the pool
 * key, compiles policies (reusing engines of unchanged policy versions). Throws ConfigError when
 * the snapshot as a whole is unusable (the caller keeps the last good one).
 */
export function buildActiveConfig(
  raw: unknown,
  pool: string,
  poolKey: string,
  previous: ActiveConfig | null,
  logger: Logger,
  lib: PolicyLib | null,
): ActiveConfig {
  const parsed = configSnapshotSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`invalid config snapshot: ${formatIssues(parsed.error).join('; ')}`);
  const snapshot = parsed.data;
  if (snapshot.pool !== pool) throw new ConfigError(`snapshot is for pool "${snapshot.pool}", not "${pool}"`);
  let eventKey: Buffer;
  let maskingKey: Buffer;
  try {
    eventKey = decodeKeyText(openSealed(poolKey, snapshot.eventKey, 'event-key'));
    maskingKey = decodeKeyText(openSealed(poolKey, snapshot.maskingKey, 'masking-key'));
  } catch (err) {
    throw new ConfigError('cannot open the snapshot keys with GATEWAY_POOL_KEY', { cause: err });
  }
  const connections = new Map<string, ResolvedConnection>();
  for (const c of snapshot.connections) {
    let password: string | null = null;
    if (c.secret) {
      try {
        password = openSealed(poolKey, c.secret, `connection:${c.name}`);
      } catch (err) {
        // One bad secret must not take the others down: the connection is left out (sessions to it refused).
        logger.error({ connection: c.name, err: (err as Error).message }, 'cannot open connection secret; connection disabled');
        continue;
      }
    }
    connections.set(c.name, { ...c, password });
  }
  const policies = new Map<string, ResolvedPolicy>();
  const brokenPolicies = new Map<string, string>();
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
      const masking = (document as { masking?: unknown[] }).masking;
      policies.set(p.name, { name: p.name, version: p.version, document, engine, masks: Array.isArray(masking) && masking.length > 0 });
    } catch (err) {
      logger.error({ policy: p.name, version: p.version, err: (err as Error).message }, 'invalid policy document; its connections refuse sessions');
      brokenPolicies.set(p.name, (err as Error).message);
    }
  }
  return {
    revision: snapshot.revision,
    snapshot,
    issuer: snapshot.issuer,
    jwks: createLocalJWKSet({ keys: snapshot.verificationKeys } as unknown as JSONWebKeySet),
    revoked: new Set(snapshot.revokedTokenIds),
    revokedGrants: new Set(snapshot.revokedGrants ?? []),
    eventKey,
    maskingKey,
    connections,
    policies,
    brokenPolicies,
  };
}

/** Why a snapshot was not applied (label of portcullis_gateway_config_rejected_total). */
export type ConfigRejection = 'signature' | 'invalid' | 'older';

export interface ConfigStoreOptions {
  prefix: string;
  pool: string;
  poolKey: string;
  /** keys given at deploy time (GATEWAY_CONFIG_PUBLIC_KEY): the only ones a snapshot may be signed with */
  trustedKeys: readonly Ed25519PublicJwk[];
  logger: Logger;
  policyLib: PolicyLib | null;
  onRejected?: (reason: ConfigRejection) => void;
}

/**
 * Watches the pool's key in the config KV bucket: the current snapshot at start, every change after.
 * Only snapshots signed by a trusted key (GATEWAY_CONFIG_PUBLIC_KEY) are considered: NATS carries them
 * but is not trusted with them. Anything else (unsigned, forged, tampered, invalid, older) is refused
 * with a log line and a metric: the gateway keeps its last good config, or stays not ready when it has
 * none. Emits 'change' (ActiveConfig) after each applied snapshot.
 */
export class ConfigStore extends EventEmitter {
  private active: ActiveConfig | null = null;
  private stopped = false;
  private watcher: { stop(): void } | null = null;
  private loop: Promise<void> | null = null;
  private readonly keyCache: JwsKeyCache = new Map();

  constructor(private readonly opts: ConfigStoreOptions) {
    super();
  }

  get current(): ActiveConfig | null {
    return this.active;
  }

  /** Verifies a KV entry's bytes and applies the snapshot they sign; null when refused. */
  applySigned(value: Uint8Array | string): ActiveConfig | null {
    let raw: unknown;
    try {
      raw = verifyConfigSnapshot(value, this.opts.trustedKeys, this.keyCache);
    } catch (err) {
      this.refuse('signature', `config snapshot refused: ${(err as Error).message}`);
      return null;
    }
    return this.apply(raw);
  }

  private refuse(reason: ConfigRejection, message: string): void {
    this.opts.onRejected?.(reason);
    const current = this.active?.revision ?? null;
    this.opts.logger.error({ reason, current }, `${message}; ${current === null ? 'not ready until a valid signed snapshot arrives' : `keeping revision ${current}`}`);
  }

  private apply(raw: unknown): ActiveConfig | null {
    try {
      const next = buildActiveConfig(raw, this.opts.pool, this.opts.poolKey, this.active, this.opts.logger, this.opts.policyLib);
      if (this.active && next.revision < this.active.revision) {
        // A replay of an older signed snapshot (or a late one): never roll back.
        this.refuse('older', `config snapshot revision ${next.revision} is older than the one in use`);
        return this.active;
      }
      this.active = next;
      this.opts.logger.info({ revision: next.revision, connections: next.connections.size, policies: next.policies.size }, 'config applied');
      this.emit('change', next);
      return next;
    } catch (err) {
      this.refuse('invalid', `config snapshot rejected: ${(err as Error).message}`);
      return null;
    }
  }

  /** Starts watching; resolves once the watch is set up (not when a config arrived). */
  start(nc: NatsConnection): void {
    this.loop = this.run(nc);
  }

  private async run(nc: NatsConnection): Promise<void> {
    const names = natsNames(this.opts.prefix);
    const key = names.configKey(this.opts.pool);
    while (!this.stopped) {
      try {
        const kv = await ensureBucket(new Kvm(nc), names.configBucket);
        const iter = await kv.watch({ key });
        this.watcher = iter;
        for await (const entry of iter) {
          if (this.stopped) break;
          if (entry.operation !== 'PUT') {
            this.opts.logger.warn({ op: entry.operation }, 'config key deleted; keeping the last good config');
            continue;
          }
          this.applySigned(entry.value);
        }
      } catch (err) {
        if (this.stopped) break;
        this.opts.logger.warn({ err: (err as Error).message }, 'config watch failed; retrying');
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, 1000).unref());
    }
  }

  /** Resolves when a config is active (or after `timeoutMs`, with null). */
  waitForConfig(timeoutMs: number): Promise<ActiveConfig | null> {
    if (this.active) return Promise.resolve(this.active);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.off('change', on);
        resolve(null);
      }, timeoutMs);
      const on = (c: ActiveConfig): void => {
        clearTimeout(t);
        resolve(c);
      };
      this.once('change', on);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.stop();
    await this.loop?.catch(() => undefined);
  }
}

