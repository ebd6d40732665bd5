import { createPrivateKey, X509Certificate } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { PrismaClient, type ConnectionModel as Connection, type Prisma } from '@portcullis/db';
import { deriveKey, encryptAtRest } from '@portcullis/protocol';
import { ApiConfig } from '../config/env.js';
import { BadRequestError, ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../common/errors.js';
import { ControlEventsService } from '../control-events/control-events.service.js';
import { ConfigPublisherService } from '../config-publisher/config-publisher.service.js';
import { TokensService, type GatewayCredential } from '../auth/tokens.service.js';
import { hasRole, type ApiPrincipal } from '../auth/principal.js';
import type { ConnectionUserView, ConnectionView, CreateConnection, CredentialsBody, UpdateConnection } from './dto/connection.dto.js';
import { isUniqueViolation } from '../common/prisma-errors.js';
import { parseOrThrow } from '../common/zod-validation.pipe.js';
import { kubernetesSecretSchema, sshSecretSchema, TYPE_FIELDS } from './dto/connection.dto.js';

/** Host keys as pinned: `<type> <base64>` (a trailing comment is dropped), without duplicates. */
function normaliseHostKeys(lines: string[]): string[] {
  return [...new Set(lines.map((l) => l.trim().split(/\s+/).slice(0, 2).join(' ')))];
}

/** host and port of an https:// API server URL (the row's host/port, for listings and logs). */
function serverHostPort(server: string): { host: string; port: number } {
  const u = new URL(server);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : 443 };
}

/** The CA must be a certificate and a client certificate/key must parse: refused now, not at the first kubectl call. */
function checkKubernetesPems(caPem: string, secretIn: unknown): void {
  const secret = (typeof secretIn === 'object' && secretIn !== null ? secretIn : undefined) as { clientCert?: unknown; clientKey?: unknown } | undefined;
  const issues: string[] = [];
  try {
    new X509Certificate(caPem);
  } catch {
    issues.push('caPem: not a valid PEM certificate');
  }
  if (secret && typeof secret.clientCert === 'string') {
    try {
      new X509Certificate(secret.clientCert);
    } catch {
      issues.push('secret.clientCert: not a valid PEM certificate');
    }
  }
  if (secret && typeof secret.clientKey === 'string') {
    try {
      createPrivateKey(secret.clientKey);
    } catch {
      issues.push('secret.clientKey: not a valid unencrypted PEM private key');
    }
  }
  if (issues.length) throw new ValidationError(issues);
}

export function toConnectionView(c: Connection): ConnectionView {
  return {
    id: c.id,
    name: c.name,
    type: c.kind,
    kind: c.kind,
    pool: c.pool,
    host: c.host,
    port: c.port,
    database: c.database,
    username: c.username,
    hasSecret: c.secretCiphertext !== null,
    tls: c.tls,
    allowedGroups: c.allowedGroups,
    policy: c.policy,
    recording: c.recording,
    approvalMode: c.approvalMode,
    ...(c.kind === 'ssh' ? { hostKeys: c.sshHostKeys } : {}),
    ...(c.kind === 'kubernetes' ? { server: c.kubeServer ?? '', caPem: c.kubeCaPem ?? '', impersonate: c.kubeImpersonate } : {}),
    status: c.brokenReason === null ? 'ok' : 'broken',
    brokenReason: c.brokenReason,
    brokenSince: c.brokenSince?.toISOString() ?? null,
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
  };
}

function toUserView(c: Connection, access: 'group' | 'grant'): ConnectionUserView {
  return { name: c.name, type: c.kind, kind: c.kind, pool: c.pool, policy: c.policy, recording: c.recording, approvalMode: c.approvalMode, access };
}

@Injectable()
export class ConnectionsService {
  private readonly secretsKey: Buffer;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly events: ControlEventsService,
    private readonly publisher: ConfigPublisherService,
    private readonly tokens: TokensService,
    config: ApiConfig,
  ) {
    this.secretsKey = deriveKey(config.masterKey, 'secrets-at-rest');
  }

  /** Admins see every connection in full; others only those they may use, without target details. */
  async list(principal: ApiPrincipal): Promise<ConnectionView[] | ConnectionUserView[]> {
    if (hasRole(principal, 'admin')) {
      return (await this.prisma.connection.findMany({ orderBy: { name: 'asc' } })).map(toConnectionView);
    }
    const granted = await this.grantedConnections(principal);
    const rows = await this.prisma.connection.findMany({
      where: { OR: [{ allowedGroups: { hasSome: principal.groups } }, { name: { in: [...granted] } }] },
      orderBy: { name: 'asc' },
    });
    return rows.map((c) => toUserView(c, c.allowedGroups.some((g) => principal.groups.includes(g)) ? 'group' : 'grant'));
  }

  async get(name: string, principal: ApiPrincipal): Promise<ConnectionView | ConnectionUserView> {
    const c = await this.find(name);
    if (hasRole(principal, 'admin')) return toConnectionView(c);
    if (c.allowedGroups.some((g) => principal.groups.includes(g))) return toUserView(c, 'group');
    if ((await this.grantedConnections(principal)).has(c.name)) return toUserView(c, 'grant');
    throw new ForbiddenError(`${principal.subject} may not use connection "${name}"`, 'connection_not_allowed');
  }

  async create(input: CreateConnection, actor: string): Promise<ConnectionView> {
    await this.checkReferences(input.pool, input.policy ?? null, input.allowedGroups);
    const common = {
      name: input.name,
      kind: input.type,
      pool: input.pool,
      allowedGroups: [...new Set(input.allowedGroups)],
      policy: input.policy ?? null,
      recording: input.recording,
      approvalMode: input.approvalMode,
    };
    let target: Omit<Prisma.ConnectionCreateInput, keyof typeof common>;
    switch (input.type) {
      case 'postgres':
        target = {
          host: input.host, port: input.port, database: input.database, username: input.username, tls: input.tls,
          secretCiphertext: input.password ? this.encrypt(input.name, input.password) : null,
        };
        break;
      case 'ssh':
        target = {
          host: input.host, port: input.port, database: '', username: input.username, tls: 'disable',
          sshHostKeys: normaliseHostKeys(input.hostKeys), secretCiphertext: this.encrypt(input.name, JSON.stringify(input.secret)),
        };
        break;
      case 'kubernetes':
        checkKubernetesPems(input.caPem, input.secret);
        target = {
          ...serverHostPort(input.server), database: '', username: '', tls: 'disable',
          kubeServer: input.server, kubeCaPem: input.caPem, kubeImpersonate: input.impersonate,
          secretCiphertext: this.encrypt(input.name, JSON.stringify(input.secret)),
        };
        break;
    }
    let row: Connection;
    try {
      row = await this.prisma.connection.create({ data: { ...common, ...target } });
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`connection "${input.name}" already exists`, 'connection_exists');
      throw err;
    }
    const view = toConnectionView(row);
    const secretSet = input.type === 'postgres' ? input.password !== undefined && input.password !== null : true;
    await this.changed(actor, 'create', view.name, undefined, view, secretSet);
    return view;
  }

  async update(name: string, patch: UpdateConnection, actor: string): Promise<ConnectionView> {
    const current = await this.find(name);
    const kind = current.kind as keyof typeof TYPE_FIELDS;
    const foreign = Object.keys(patch).filter((k) => patch[k as keyof UpdateConnection] !== undefined && !TYPE_FIELDS[kind]?.includes(k) && Object.values(TYPE_FIELDS).some((f) => f.includes(k)));
    if (foreign.length) throw new ValidationError(foreign.map((f) => `${f}: not a field of a ${current.kind} connection`));
    let secretCiphertext: string | null | undefined;
    if (kind === 'postgres') {
      secretCiphertext = patch.password === undefined ? undefined : patch.password === null ? null : this.encrypt(name, patch.password);
    } else if (patch.secret !== undefined) {
      const secret = parseOrThrow(kind === 'ssh' ? sshSecretSchema : kubernetesSecretSchema, patch.secret, 'secret');
      secretCiphertext = this.encrypt(name, JSON.stringify(secret));
    }
    if (kind === 'kubernetes' && (patch.caPem !== undefined || patch.secret !== undefined)) {
      checkKubernetesPems(patch.caPem ?? current.kubeCaPem ?? '', patch.secret);
    }
    if (kind === 'ssh' && patch.username !== undefined && !/^[A-Za-z0-9._][A-Za-z0-9._-]*\$?$/.test(patch.username)) {
      throw new ValidationError(['username: expected a unix user name']);
    }
    await this.checkReferences(
      patch.pool ?? current.pool,
      patch.policy !== undefined ? patch.policy : current.policy,
      patch.allowedGroups ?? [],
      patch.pool === undefined && patch.policy === undefined,
    );
    const row = await this.prisma.connection.update({
      where: { name },
      data: {
        pool: patch.pool,
        host: patch.host ?? (patch.server ? serverHostPort(patch.server).host : undefined),
        port: patch.port ?? (patch.server ? serverHostPort(patch.server).port : undefined),
        database: patch.database,
        username: patch.username,
        secretCiphertext,
        tls: patch.tls,
        sshHostKeys: patch.hostKeys ? normaliseHostKeys(patch.hostKeys) : undefined,
        kubeServer: patch.server,
        kubeCaPem: patch.caPem,
        kubeImpersonate: patch.impersonate,
        allowedGroups: patch.allowedGroups ? [...new Set(patch.allowedGroups)] : undefined,
        policy: patch.policy,
        recording: patch.recording,
        approvalMode: patch.approvalMode,
      },
    });
    const after = toConnectionView(row);
    await this.changed(actor, 'update', name, toConnectionView(current), after, secretCiphertext !== undefined);
    return after;
  }

  async remove(name: string, actor: string): Promise<void> {
    const before = toConnectionView(await this.find(name));
    await this.prisma.connection.delete({ where: { name } });
    await this.changed(actor, 'delete', name, before, undefined, false);
  }

  /** A gateway credential for the caller's own identity (group membership or an approved access request). */
  async credentials(name: string, principal: ApiPrincipal, body: CredentialsBody): Promise<GatewayCredential> {
    if (!principal.identityId) {
      throw new ForbiddenError(`${principal.subject} has no identity and cannot hold a gateway credential; sign in as a person or agent`, 'no_identity');
    }
    return this.tokens.issueGatewayCredential(principal.identityId, name, { mode: body.mode, parentTokenId: principal.tokenId });
  }

  private async find(name: string): Promise<Connection> {
    const row = await this.prisma.connection.findUnique({ where: { name } });
    if (!row) throw new NotFoundError(`connection "${name}" does not exist`, 'connection_not_found');
    return row;
  }

  private async grantedConnections(principal: ApiPrincipal): Promise<Set<string>> {
    if (!principal.identityId) return new Set();
    const rows = await this.prisma.accessRequest.findMany({
      where: { identity: { in: [principal.subject, principal.identityId] }, status: 'approved', grantedUntil: { gt: new Date() } },
      select: { connection: true },
    });
    return new Set(rows.map((r) => r.connection));
  }

  /** The pool must have a key (or secrets could not be sealed), the policy and the groups must exist. */
  private async checkReferences(pool: string, policy: string | null, groups: string[], skipPoolAndPolicy = false): Promise<void> {
    if (!skipPoolAndPolicy) {
      const p = await this.prisma.gatewayPool.findUnique({ where: { name: pool }, select: { name: true } });
      if (!p) {
        throw new BadRequestError(
          `pool: gateway pool "${pool}" has no registered key; register the pool's X25519 public key with PUT /v1/gateway-pools/${pool} {"publicKey": "..."} first`,
          'pool_has_no_key',
        );
      }
      if (policy && !(await this.prisma.policy.findUnique({ where: { name: policy }, select: { name: true } }))) {
        throw new BadRequestError(`policy: policy "${policy}" does not exist (create it with POST /v1/policies)`, 'unknown_policy');
      }
    }
    const unique = [...new Set(groups)];
    if (unique.length) {
      const found = await this.prisma.group.findMany({ where: { name: { in: unique } }, select: { name: true } });
      const missing = unique.filter((g) => !found.some((f) => f.name === g));
      if (missing.length) throw new BadRequestError(`allowedGroups: unknown group ${missing.map((m) => `"${m}"`).join(', ')} (create it with POST /v1/groups)`, 'unknown_group');
    }
  }

  /** The target secret at rest: the password (postgres) or the secret's JSON (ssh, kubernetes), bound to the name. */
  private encrypt(name: string, secret: string): string {
    return encryptAtRest(this.secretsKey, secret, name);
  }

  private async changed(actor: string, action: string, target: string, before: ConnectionView | undefined, after: ConnectionView | undefined, secretChanged: boolean): Promise<void> {
    this.publisher.requestPublish();
    await this.events.record({ type: 'connection.changed', actor, data: { action, target, before, after, secretChanged } });
  }
}
