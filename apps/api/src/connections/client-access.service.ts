import { Injectable } from '@nestjs/common';
import { dump as toYaml } from 'js-yaml';
import { PrismaClient, type ConnectionModel as Connection } from '@portcullis/db';
import { parseSshPublicKeyLine, signSshCertificate, sshKeySha256, SshKeyError } from '@portcullis/protocol';
import { BadRequestError, ForbiddenError, NotFoundError, ValidationError } from '../common/errors.js';
import { TokensService } from '../auth/tokens.service.js';
import type { ApiPrincipal } from '../auth/principal.js';
import { PoolKeysService } from '../pool-keys/pool-keys.service.js';
import { ConnectionsService } from './connections.service.js';
import type { KubeconfigQuery, SshCertificateBody, SshCertificateResponse } from './dto/client-access.dto.js';

/** Extensions of user certificates: a pty and forwarding requests reach the gateway, whose policy decides on them. */
const CERT_EXTENSIONS = ['permit-port-forwarding', 'permit-pty'];
export const KUBE_EXEC_API_VERSION = 'client.authentication.k8s.io/v1';

/**
 * What clients need to reach an SSH or Kubernetes connection through the gateway: OpenSSH user
 * certificates, known_hosts lines and kubeconfigs. Every answer is for a caller who may use the
 * connection (the same rule as a credential); certificates and static tokens rest on a fresh
 * gateway credential, so they expire, and are revoked, with it.
 */
@Injectable()
export class ClientAccessService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly connections: ConnectionsService,
    private readonly tokens: TokensService,
    private readonly poolKeys: PoolKeysService,
  ) {}

  async sshCertificate(name: string, principal: ApiPrincipal, body: SshCertificateBody): Promise<SshCertificateResponse> {
    const c = await this.typed(name, 'ssh', principal);
    let publicKey;
    try {
      publicKey = parseSshPublicKeyLine(body.publicKey);
    } catch (err) {
      throw new ValidationError([`publicKey: ${(err as Error).message}`]);
    }
    if (!principal.identityId) {
      throw new ForbiddenError(`${principal.subject} has no identity and cannot hold a gateway credential; sign in as a person or agent`, 'no_identity');
    }
    const keys = await this.poolKeys.get(c.pool);
    // the credential (may-use check, expiry, revocation, audit event) first: the key id carries it
    // bound to the key: the certificate (a public file) must not be usable as a password or bearer token
    const cred = await this.tokens.issueGatewayCredential(principal.identityId, name, { mode: body.mode, parentTokenId: principal.tokenId, sshKeySha256: sshKeySha256(publicKey.blob) });
    let certificate: string;
    try {
      certificate = signSshCertificate({
        publicKey,
        caKey: keys.sshUserCa,
        keyId: cred.token,
        principals: [c.name],
        // a minute back: a gateway whose clock is a little behind still takes a fresh certificate
        validAfter: new Date(Date.now() - 60_000),
        validBefore: new Date(cred.expiresAt),
        extensions: CERT_EXTENSIONS,
        comment: `${principal.subject}@portcullis`,
      });
    } catch (err) {
      if (err instanceof SshKeyError) throw new ValidationError([`publicKey: ${err.message}`]);
      throw err;
    }
    return { certificate, expiresAt: cred.expiresAt, jti: cred.jti, knownHosts: await this.knownHosts(name, principal), principal: c.name, user: c.name, ...this.tokens.gatewayAddress('ssh', c.name) };
  }

  /** known_hosts lines for the gateway's SSH listener: its host key, and its host CA as @cert-authority. */
  async knownHosts(name: string, principal: ApiPrincipal): Promise<string> {
    const c = await this.typed(name, 'ssh', principal);
    const keys = await this.poolKeys.get(c.pool);
    const { port } = this.tokens.gatewayAddress('ssh', c.name);
    const patterns = keys.tlsHosts.map((h) => (port === 22 ? h : `[${h}]:${port}`)).join(',');
    const strip = (line: string) => line.split(' ').slice(0, 2).join(' ');
    return `${patterns} ${strip(keys.sshHostPublicKey)}\n@cert-authority ${patterns} ${strip(keys.sshHostCaPublicKey)}\n`;
  }

  /** A kubeconfig for the gateway's Kubernetes listener: the pool CA, and an exec plugin (default) or a static credential. */
  async kubeconfig(name: string, principal: ApiPrincipal, q: KubeconfigQuery): Promise<string> {
    const c = await this.typed(name, 'kubernetes', principal);
    const keys = await this.poolKeys.get(c.pool);
    const { uri } = this.tokens.gatewayAddress('kubernetes', c.name);
    const id = `portcullis-${c.name}`;
    let user: Record<string, unknown>;
    if (q.token === 'static') {
      if (!principal.identityId) throw new ForbiddenError(`${principal.subject} has no identity and cannot hold a gateway credential`, 'no_identity');
      const cred = await this.tokens.issueGatewayCredential(principal.identityId, c.name, { mode: q.mode, parentTokenId: principal.tokenId });
      user = { token: cred.token };
    } else {
      user = {
        exec: {
          apiVersion: KUBE_EXEC_API_VERSION,
          command: 'portcullis',
          args: ['kube-credential', c.name],
          interactiveMode: 'Never',
          provideClusterInfo: false,
          installHint: 'portcullis kube-credential needs the Portcullis CLI on PATH (pnpm portcullis, or apps/cli) signed in with `portcullis login`; or fetch a kubeconfig with ?token=static',
        },
      };
    }
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: id, cluster: { server: uri, 'certificate-authority-data': Buffer.from(keys.tlsCaPem).toString('base64') } }],
      users: [{ name: id, user }],
      contexts: [{ name: id, context: { cluster: id, user: id, ...(q.namespace ? { namespace: q.namespace } : {}) } }],
      'current-context': id,
      preferences: {},
    };
    return toYaml(config, { lineWidth: -1, noRefs: true });
  }

  private async typed(name: string, kind: 'ssh' | 'kubernetes', principal: ApiPrincipal): Promise<Connection> {
    await this.connections.get(name, principal); // 404 unknown, 403 when the caller may not use it
    const c = await this.prisma.connection.findUnique({ where: { name } });
    if (!c) throw new NotFoundError(`connection "${name}" does not exist`, 'connection_not_found');
    if (c.kind !== kind) throw new BadRequestError(`connection "${name}" is a ${c.kind} connection, not ${kind}`, 'wrong_connection_type');
    return c;
  }
}
