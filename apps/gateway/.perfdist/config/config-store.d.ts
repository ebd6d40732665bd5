import { EventEmitter } from 'node:events';
import type { NatsConnection } from '@nats-io/transport-node';
import { type JWTVerifyGetKey } from 'jose';
import { type ConfigSnapshot, type ConnectionConfig } from '@portcullis/protocol';
import type { PolicyEngineLike, PolicyLib } from '../policy/policy-lib.js';
import type { Logger } from '../logger.js';
/** A connection of the snapshot with its secret opened. Never logged, never sent to a client. */
export interface ResolvedConnection extends ConnectionConfig {
    password: string | null;
}
export interface ResolvedPolicy {
    name: string;
    version: number;
    /** the document as validated by @portcullis/policy */
    document: unknown;
    engine: PolicyEngineLike;
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
    eventKey: Buffer;
    maskingKey: Buffer;
    connections: ReadonlyMap<string, ResolvedConnection>;
    policies: ReadonlyMap<string, ResolvedPolicy>;
    /** policies that failed to compile: connections using them refuse sessions (fail closed) */
    brokenPolicies: ReadonlyMap<string, string>;
}
export declare class ConfigError extends Error {
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/**
 * Key material in a sealed secret is text: 64 hex chars or base64/base64url of the bytes.
 * Anything else is used as its UTF-8 bytes.
 */
export declare function decodeKeyText(text: string): Buffer;
/**
 * Builds an ActiveConfig from a raw snapshot: validates it, opens every sealed secret with the pool
 * key, compiles policies (reusing engines of unchanged policy versions). Throws ConfigError when
 * the snapshot as a whole is unusable (the caller keeps the last good one).
 */
export declare function buildActiveConfig(raw: unknown, pool: string, poolKey: string, previous: ActiveConfig | null, logger: Logger, lib: PolicyLib | null): ActiveConfig;
export interface ConfigStoreOptions {
    prefix: string;
    pool: string;
    poolKey: string;
    logger: Logger;
    policyLib: PolicyLib | null;
}
/**
 * Watches the pool's key in the config KV bucket: the current snapshot at start, every change after.
 * Keeps the last good config when a snapshot is invalid or NATS goes away.
 * Emits 'change' (ActiveConfig) after each applied snapshot.
 */
export declare class ConfigStore extends EventEmitter {
    private readonly opts;
    private active;
    private stopped;
    private watcher;
    private loop;
    constructor(opts: ConfigStoreOptions);
    get current(): ActiveConfig | null;
    /** Applies a snapshot directly (used by the KV watch; tests may call it too). */
    apply(raw: unknown): ActiveConfig | null;
    /** Starts watching; resolves once the watch is set up (not when a config arrived). */
    start(nc: NatsConnection): void;
    private run;
    /** Resolves when a config is active (or after `timeoutMs`, with null). */
    waitForConfig(timeoutMs: number): Promise<ActiveConfig | null>;
    stop(): Promise<void>;
}
