import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Kvm, type KV } from '@nats-io/kv';
import { PrismaClient, type ConnectionModel, type Prisma } from '@portcullis/db';
import {
  configSnapshotSchema, connectionConfigSchema, connectionSecretContext, GATEWAY_TLS_KEY_CONTEXT, SSH_HOST_KEY_CONTEXT, decryptAtRest, deriveKey, ensureBucket, sealForPool, SchemaError, formatIssues, signConfigSnapshot, verifyConfigSnapshot, ed25519PublicJwkSchema,
  type ConfigSnapshot, type ConnectionConfig, type Ed25519PublicJwk, type JwsSigningKey,
} from '@portcullis/protocol';
import { ApiConfig } from '../config/env.js';
import { NatsService } from '../nats/nats.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { SigningKeysService } from '../auth/signing-keys.service.js';
import { ControlEventsService } from '../control-events/control-events.service.js';
import { PoolKeysService } from '../pool-keys/pool-keys.service.js';

const DEBOUNCE_MS = 50;
const REPUBLISH_MS = 60_000;
/**
 * How long past its expiry a revoked credential (and past its end a revoked grant) stays on the
 * snapshot. Gateways verify expiry with a clock tolerance (5 s) and their clock may lag the api's: a
 * revocation that left the list exactly at `exp` would let such a credential in again for that long.
 */
export const REVOCATION_OVERLAP_MS = 5 * 60_000;

export class SnapshotPublishError extends Error {
  constructor(readonly pool: string, message: string, options?: { cause?: unknown }) {
    super(`pool ${pool}: ${message}`, options);
    this.name = 'SnapshotPublishError';
  }
}

/** What every pool's snapshot shares (computed once per publish round). */
interface Shared {
  issuer: string;
  verificationKeys: ConfigSnapshot['verificationKeys'];
  revokedTokenIds: string[];
  revokedGrants: string[];
  policies: ConfigSnapshot['policies'];
}

/**
 * Writes one signed config snapshot per gateway pool to the KV bucket `<p>-config`, key `pool.<pool>`.
 * Changes call `requestPublish()` (debounced); a timer republishes every minute so expired revocations drop
 * out; boot publishes once. Each pool's revision is bumped in the same transaction that holds the pool row
 * locked while the snapshot is written, so two api replicas never put revisions out of order.
 */
@Injectable()
export class ConfigPublisherService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ConfigPublisherService.name);
  private readonly secretsKey: Buffer;
  private readonly eventKey: string;
  private readonly maskingKey: string;
  private kv: KV | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private interval: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly nats: NatsService,
    private readonly keys: SigningKeysService,
    private readonly metrics: MetricsService,
    private readonly config: ApiConfig,
    private readonly events: ControlEventsService,
    private readonly poolKeys: PoolKeysService,
  ) {
    this.secretsKey = deriveKey(config.masterKey, 'secrets-at-rest');
    this.eventKey = deriveKey(config.masterKey, 'event-signing').toString('base64url');
    this.maskingKey = deriveKey(config.masterKey, 'masking-hmac').toString('base64url');
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.bucket();
    // A pool that cannot be published (bad key, undecryptable secret) is logged; it must not stop the api.
    await this.publishNow().catch((err: unknown) => this.logger.error(`config publish at boot failed: ${(err as Error).message}`));
    this.interval = setInterval(() => this.requestPublish(), REPUBLISH_MS);
    this.interval.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.debounce) clearTimeout(this.debounce);
    if (this.interval) clearInterval(this.interval);
    await Promise.allSettled([this.inFlight, this.queued]);
  }

  /** Something changed: publish soon (changes within ~50 ms coalesce into one round). */
  requestPublish(): void {
    if (this.stopped || this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = null;
      this.publishNow().catch((err: unknown) => this.logger.error(`config publish failed: ${(err as Error).message}`));
    }, DEBOUNCE_MS);
  }

  /** Publishes every pool now (after any round in progress) and resolves when done. */
  publishNow(): Promise<void> {
    if (this.debounce) {
      clearTimeout(this.debounce);
      this.debounce = null;
    }
    if (this.queued) return this.queued;
    if (this.inFlight) {
      const next = this.inFlight
        .catch(() => undefined)
        .then(() => {
          this.queued = null;
          return this.runRound();
        });
      this.queued = next;
      return next;
    }
    return this.runRound();
  }

  /** Public JWKs of the keys snapshots are signed with (every active key of this master key: rotation). */
  signingKeys(): Ed25519PublicJwk[] {
    return this.keys.publicJwks().map((k) => ed25519PublicJwkSchema.parse(k));
  }

  /** The snapshot currently in the bucket for `pool`, its signature checked as a gateway does (tests, diagnostics). */
  async current(pool: string): Promise<ConfigSnapshot | null> {
    const entry = await (await this.bucket()).get(this.nats.names.configKey(pool));
    if (!entry || entry.operation !== 'PUT') return null;
    return configSnapshotSchema.parse(verifyConfigSnapshot(entry.value, this.keys.publicJwks()));
  }

  private runRound(): Promise<void> {
    const p = this.publishAll().finally(() => {
      if (this.inFlight === p) this.inFlight = null;
    });
    this.inFlight = p;
    return p;
  }

  private async bucket(): Promise<KV> {
    this.kv ??= await ensureBucket(new Kvm(this.nats.nc), this.nats.names.configBucket);
    return this.kv;
  }

  private async publishAll(): Promise<void> {
    const pools = await this.prisma.gatewayPool.findMany({ select: { name: true } });
    if (!pools.length) return;
    const shared = await this.shared();
    const failures: SnapshotPublishError[] = [];
    for (const { name } of pools) {
      try {
        await this.publishPool(name, shared);
        this.metrics.snapshotsPublished.inc({ pool: name, result: 'ok' });
      } catch (err) {
        this.metrics.snapshotsPublished.inc({ pool: name, result: 'error' });
        const e = err instanceof SnapshotPublishError ? err : new SnapshotPublishError(name, (err as Error).message, { cause: err });
        // The pool keeps its last good snapshot (a broken connection alone never gets here: it is left out and marked).
        this.logger.error(`config snapshot not published: ${e.message}`);
        failures.push(e);
      }
    }
    if (failures.length === pools.length) throw failures[0];
  }

  private async shared(): Promise<Shared> {
    const keepFrom = new Date(Date.now() - REVOCATION_OVERLAP_MS);
    const [revoked, revokedGrants, policies] = await Promise.all([
      this.prisma.token.findMany({ where: { revokedAt: { not: null }, expiresAt: { gt: keepFrom } }, select: { id: true, grantId: true }, orderBy: { id: 'asc' } }),
      // listed until the grant would have ended: a credential minted under it expires by then (exp ≤ gexp)
      this.prisma.accessRequest.findMany({ where: { status: 'revoked', grantedUntil: { gt: keepFrom } }, select: { id: true }, orderBy: { id: 'asc' } }),
      this.prisma.policy.findMany({ select: { name: true, version: true, document: true }, orderBy: { name: 'asc' } }),
    ]);
    const grantIds = new Set(revokedGrants.map((r) => r.id));
    return {
      issuer: this.config.env.PORTCULLIS_ISSUER,
      verificationKeys: this.keys.publicJwks().map((k) => ({ ...k })),
      // A credential of a revoked grant is refused through revokedGrants (listed as long as the credential
      // can live: exp ≤ the grant's end), which also names the grant to the client: not listed twice.
      revokedTokenIds: revoked.filter((t) => !t.grantId || !grantIds.has(t.grantId)).map((t) => t.id),
      revokedGrants: [...grantIds],
      policies: policies.map((p) => ({ name: p.name, version: p.version, document: p.document })),
    };
  }

  private async publishPool(pool: string, shared: Shared): Promise<void> {
    const kv = await this.bucket();
    // generated on the pool's first publish, outside the transaction (it may take a few ms of key generation)
    const keys = await this.poolKeys.get(pool);
    const changes = await this.prisma.$transaction(
      async (tx: Prisma.TransactionClient) => {
        // Row lock + bump: concurrent publishers for this pool serialise here.
        const row = await tx.gatewayPool.update({ where: { name: pool }, data: { revision: { increment: 1 } } });
        const rows = await tx.connection.findMany({ where: { pool }, orderBy: { name: 'asc' } });
        // One connection that cannot be published (a secret under another master key, an invalid row) is
        // left out and marked broken; every other connection of the pool goes on working.
        const connections: ConnectionConfig[] = [];
        const broken = new Map<string, string>();
        for (const c of rows) {
          const r = this.connectionConfig(c, row.publicKey);
          if ('broken' in r) broken.set(c.name, r.broken);
          else connections.push(r.config);
        }
        const snapshot: ConfigSnapshot = {
          revision: row.revision,
          pool,
          generatedAt: new Date().toISOString(),
          issuer: shared.issuer,
          verificationKeys: shared.verificationKeys,
          revokedTokenIds: shared.revokedTokenIds,
          revokedGrants: shared.revokedGrants,
          eventKey: sealForPool(row.publicKey, this.eventKey, 'event-key'),
          maskingKey: sealForPool(row.publicKey, this.maskingKey, 'masking-key'),
          connections,
          policies: shared.policies,
          ssh: {
            hostKey: sealForPool(row.publicKey, keys.sshHostKey, SSH_HOST_KEY_CONTEXT),
            userCaPublicKey: keys.sshUserCaPublicKey,
            hostCertificate: keys.sshHostCertificate,
          },
          tls: { caPem: keys.tlsCaPem, certPem: keys.tlsCertPem, key: sealForPool(row.publicKey, keys.tlsKeyPem, GATEWAY_TLS_KEY_CONTEXT) },
        };
        const checked = configSnapshotSchema.safeParse(snapshot);
        if (!checked.success) throw new SnapshotPublishError(pool, 'snapshot failed its schema', { cause: new SchemaError('config snapshot', formatIssues(checked.error)) });
        // Signed with the token-signing key: gateways trust only the public keys they were deployed with.
        await kv.put(this.nats.names.configKey(pool), signConfigSnapshot(checked.data, this.signingKey()));
        return this.markBroken(tx, pool, broken);
      },
      { timeout: 15_000, maxWait: 15_000 },
    );
    this.metrics.connectionsBroken.set({ pool }, changes.brokenNow);
    for (const { name, reason } of changes.broke) {
      this.logger.error(
        `connection ${name} (pool ${pool}) left out of the config snapshot: ${reason}; the pool's other connections are published. ` +
          `Fix it with PATCH /v1/connections/${name} (e.g. set its password again) or delete it`,
      );
      void this.events.record({ type: 'connection.changed', actor: 'system', data: { action: 'broken', target: name, pool, reason } });
    }
    for (const name of changes.repaired) {
      this.logger.log(`connection ${name} (pool ${pool}) is published again`);
      void this.events.record({ type: 'connection.changed', actor: 'system', data: { action: 'repaired', target: name, pool } });
    }
  }

  /**
   * Records which connections of `pool` are broken (`brokenReason`), in the publishing transaction, so that
   * replicas agree and each change of state is reported once. Raw SQL: `updatedAt` stays the admin's.
   */
  private async markBroken(tx: Prisma.TransactionClient, pool: string, broken: ReadonlyMap<string, string>): Promise<{ broke: { name: string; reason: string }[]; repaired: string[]; brokenNow: number }> {
    const broke: { name: string; reason: string }[] = [];
    for (const [name, reason] of broken) {
      const n = await tx.$executeRaw`UPDATE "Connection" SET "brokenReason" = ${reason}, "brokenSince" = coalesce("brokenSince", now())
        WHERE "name" = ${name} AND "brokenReason" IS DISTINCT FROM ${reason}`;
      if (n > 0) broke.push({ name, reason });
    }
    const names = [...broken.keys()];
    const repaired = await tx.$queryRaw<{ name: string }[]>`UPDATE "Connection" SET "brokenReason" = NULL, "brokenSince" = NULL
      WHERE "pool" = ${pool} AND "brokenReason" IS NOT NULL AND NOT ("name" = ANY(${names}::text[])) RETURNING "name"`;
    return { broke, repaired: repaired.map((r) => r.name), brokenNow: broken.size };
  }

  /** A connection row as the snapshot carries it, or why it cannot be published. */
  private connectionConfig(c: ConnectionModel, poolPublicKey: string): { config: ConnectionConfig } | { broken: string } {
    let password: string | null = null;
    if (c.secretCiphertext) {
      try {
        password = decryptAtRest(this.secretsKey, c.secretCiphertext, c.name);
      } catch {
        return { broken: 'its secret cannot be decrypted with this PORTCULLIS_MASTER_KEY (it was stored under another one)' };
      }
    }
    const config = connectionConfigSchema.safeParse({
      name: c.name,
      kind: c.kind,
      host: c.host,
      port: c.port,
      database: c.database,
      username: c.username,
      // postgres: the password; ssh/kubernetes: the secret's JSON (sshTargetSecretSchema / kubernetesTargetSecretSchema)
      secret: password === null ? null : sealForPool(poolPublicKey, password, connectionSecretContext(c.name)),
      tls: c.kind === 'postgres' ? c.tls : 'disable',
      allowedGroups: c.allowedGroups,
      policy: c.policy,
      recording: c.recording,
      approvalMode: c.approvalMode,
      ...(c.kind === 'ssh' ? { ssh: { hostKeys: c.sshHostKeys } } : {}),
      ...(c.kind === 'kubernetes' ? { kubernetes: { server: c.kubeServer, caPem: c.kubeCaPem, impersonate: c.kubeImpersonate } } : {}),
    });
    if (!config.success) return { broken: `invalid configuration: ${formatIssues(config.error).join('; ')}` };
    return { config: config.data };
  }

  /** The active token-signing key, as libs/protocol's JWS signer takes it. */
  private signingKey(): JwsSigningKey {
    const { kid, privateKey } = this.keys.activeKey;
    return { kid, privateKey };
  }
}
