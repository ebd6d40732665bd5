import { createHash } from 'node:crypto';
import { Agent } from 'node:https';
import { kubernetesTargetSecretSchema, type KubernetesTargetSecret } from '@portcullis/protocol';
import type { ResolvedConnection } from '../config/config-store.js';

/** The API server of a kubernetes connection as the gateway reaches it. */
export interface KubeUpstream {
  url: URL;
  /** keep-alive agent: the pinned CA (nothing else is trusted), and the client certificate when the credential is one */
  agent: Agent;
  /** the same TLS, no keep-alive: an upgraded (exec/attach/port-forward) connection is never reused */
  upgradeAgent: Agent;
  /** `Bearer <token>` when the credential is a token */
  authorization: string | null;
  impersonate: boolean;
}

export class KubeUpstreamError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KubeUpstreamError';
  }
}

/**
 * One upstream per connection, made again when its server, CA or credential changes (a new
 * snapshot). The connection's opened secret is JSON (kubernetesTargetSecretSchema).
 */
export class KubeUpstreams {
  private readonly byName = new Map<string, { fingerprint: string; upstream: KubeUpstream }>();
  /** the upstream of each resolved connection object (a new snapshot brings new objects, checked by fingerprint) */
  private readonly byConnection = new WeakMap<ResolvedConnection, KubeUpstream>();

  get(conn: ResolvedConnection): KubeUpstream {
    const seen = this.byConnection.get(conn);
    if (seen && this.byName.get(conn.name)?.upstream === seen) return seen;
    const upstream = this.make(conn);
    this.byConnection.set(conn, upstream);
    return upstream;
  }

  private make(conn: ResolvedConnection): KubeUpstream {
    const k = conn.kubernetes;
    if (conn.kind !== 'kubernetes' || !k) throw new KubeUpstreamError(`connection "${conn.name}" is not a kubernetes connection`);
    const fingerprint = createHash('sha256').update(`${k.server}\0${k.caPem}\0${k.impersonate}\0${conn.password ?? ''}`).digest('hex');
    const known = this.byName.get(conn.name);
    if (known?.fingerprint === fingerprint) return known.upstream;
    known?.upstream.agent.destroy();
    known?.upstream.upgradeAgent.destroy();
    let secret: KubernetesTargetSecret;
    try {
      secret = kubernetesTargetSecretSchema.parse(JSON.parse(conn.password ?? 'null'));
    } catch (err) {
      throw new KubeUpstreamError(`the credential of connection "${conn.name}" is not a token or a client certificate`, { cause: err });
    }
    const tls = { ca: k.caPem, ...('clientCert' in secret ? { cert: secret.clientCert, key: secret.clientKey } : {}) };
    const upstream: KubeUpstream = {
      url: new URL(k.server),
      agent: new Agent({ ...tls, keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' }),
      upgradeAgent: new Agent({ ...tls, keepAlive: false }),
      authorization: 'token' in secret ? `Bearer ${secret.token}` : null,
      impersonate: k.impersonate,
    };
    this.byName.set(conn.name, { fingerprint, upstream });
    return upstream;
  }

  /** Drops upstreams of connections no longer in the config. */
  retain(names: ReadonlySet<string>): void {
    for (const [name, u] of this.byName) {
      if (names.has(name)) continue;
      u.upstream.agent.destroy();
      u.upstream.upgradeAgent.destroy();
      this.byName.delete(name);
    }
  }

  close(): void {
    this.retain(new Set());
  }
}
