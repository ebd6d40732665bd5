import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { PrismaClient, type GatewayPoolKeysModel as PoolKeysRow } from '@portcullis/db';
import {
  certificateDaysLeft, decryptAtRest, deriveKey, ed25519FromOpenSshPrivateKey, ed25519PublicKeyLine, ed25519ToOpenSshPrivateKey, encryptAtRest,
  generateGatewayCa, issueGatewayServerCert, parseSshPublicKeyLine, signSshCertificate,
} from '@portcullis/protocol';
import { ApiConfig } from '../config/env.js';
import { SigningKeysService } from '../auth/signing-keys.service.js';

/** A pool's key material, opened. Never logged, never returned whole by a route. */
export interface PoolKeys {
  pool: string;
  /** the gateway's SSH host key: OpenSSH private key file and its `ssh-ed25519 …` line */
  sshHostKey: string;
  sshHostPublicKey: string;
  /** the CA that signs user certificates (principal = connection name) */
  sshUserCa: KeyObject;
  sshUserCaPublicKey: string;
  /** the CA that signs the gateway's host certificate (`@cert-authority` in known_hosts) */
  sshHostCaPublicKey: string;
  /** a host certificate for sshHostKey, valid for the public host (what a gateway may present) */
  sshHostCertificate: string;
  tlsCaPem: string;
  tlsCertPem: string;
  /** PKCS#8 PEM of tlsCertPem */
  tlsKeyPem: string;
  tlsHosts: string[];
}

export class PoolKeysError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PoolKeysError';
  }
}

const RENEW_DAYS = 30;

/**
 * Per pool (and master key) key material for SSH and the Kubernetes listener, generated once under an
 * advisory lock (replicas agree on one), encrypted at rest, and kept in memory once opened. The server
 * certificate is reissued (same CA, so kubeconfigs stay valid) when the public host changes or it
 * nears expiry.
 */
@Injectable()
export class PoolKeysService {
  private readonly logger = new Logger(PoolKeysService.name);
  private readonly atRestKey: Buffer;
  private readonly cache = new Map<string, Promise<PoolKeys>>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly signingKeys: SigningKeysService,
    private readonly config: ApiConfig,
  ) {
    this.atRestKey = deriveKey(config.masterKey, 'secrets-at-rest');
  }

  /** The names and addresses the gateway's TLS certificate must hold. */
  tlsHosts(): string[] {
    return [...new Set(['localhost', '127.0.0.1', this.config.env.GATEWAY_PUBLIC_HOST.replace(/^\[|\]$/g, '')])];
  }

  /** The pool's keys, created on first use. */
  get(pool: string): Promise<PoolKeys> {
    let p = this.cache.get(pool);
    if (!p) {
      p = this.loadOrCreate(pool);
      p.catch(() => this.cache.delete(pool));
      this.cache.set(pool, p);
    }
    return p.then((k) => (this.needsNewCert(k) ? this.refresh(pool) : k));
  }

  private needsNewCert(k: PoolKeys): boolean {
    const want = this.tlsHosts();
    return want.some((h) => !k.tlsHosts.includes(h)) || certificateDaysLeft(k.tlsCertPem) < RENEW_DAYS;
  }

  private refresh(pool: string): Promise<PoolKeys> {
    const p = this.loadOrCreate(pool);
    p.catch(() => this.cache.delete(pool));
    this.cache.set(pool, p);
    return p;
  }

  private enc(pool: string, what: string, text: string): string {
    return encryptAtRest(this.atRestKey, text, `pool-key:${pool}:${what}`);
  }

  private dec(pool: string, what: string, sealed: string): string {
    try {
      return decryptAtRest(this.atRestKey, sealed, `pool-key:${pool}:${what}`);
    } catch (err) {
      throw new PoolKeysError(`pool ${pool}: cannot decrypt its ${what} key with this PORTCULLIS_MASTER_KEY`, { cause: err });
    }
  }

  private async loadOrCreate(pool: string): Promise<PoolKeys> {
    const masterKeyId = this.signingKeys.masterKeyId;
    const hosts = this.tlsHosts();
    // Generate outside the transaction (certificate signing is async); the lock decides whose is kept.
    const existing = await this.prisma.gatewayPoolKeys.findUnique({ where: { pool_masterKeyId: { pool, masterKeyId } } });
    if (existing && !this.rowNeedsCert(existing, hosts)) return this.open(existing);
    const fresh = existing ? null : await this.generate(pool);
    const ca = existing ? { caPem: existing.tlsCaPem, caKeyPem: this.dec(pool, 'tls-ca', existing.tlsCaKeyEncrypted) } : null;
    const cert = await issueGatewayServerCert(ca ?? fresh!.ca, hosts);
    const row = await this.prisma.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`portcullis:pool-keys:${pool}:${masterKeyId}`}))`;
      const now = await tx.gatewayPoolKeys.findUnique({ where: { pool_masterKeyId: { pool, masterKeyId } } });
      if (now && !this.rowNeedsCert(now, hosts)) return now;
      const tls = { tlsCertPem: cert.certPem, tlsKeyEncrypted: this.enc(pool, 'tls', cert.keyPem), tlsHosts: cert.hosts };
      if (now) return tx.gatewayPoolKeys.update({ where: { pool_masterKeyId: { pool, masterKeyId } }, data: tls });
      const f = fresh ?? (await this.generate(pool));
      this.logger.log(`created SSH host key, SSH CAs and TLS CA for gateway pool ${pool}`);
      return tx.gatewayPoolKeys.create({
        data: {
          pool, masterKeyId,
          sshHostKeyEncrypted: this.enc(pool, 'ssh-host', f.sshHost.file),
          sshHostPublicKey: f.sshHost.line,
          sshUserCaEncrypted: this.enc(pool, 'ssh-user-ca', f.userCa.file),
          sshUserCaPublicKey: f.userCa.line,
          sshHostCaEncrypted: this.enc(pool, 'ssh-host-ca', f.hostCa.file),
          sshHostCaPublicKey: f.hostCa.line,
          tlsCaPem: f.ca.caPem,
          tlsCaKeyEncrypted: this.enc(pool, 'tls-ca', f.ca.caKeyPem),
          ...tls,
        },
      });
    });
    return this.open(row);
  }

  private rowNeedsCert(row: PoolKeysRow, hosts: string[]): boolean {
    return hosts.some((h) => !row.tlsHosts.includes(h)) || certificateDaysLeft(row.tlsCertPem) < RENEW_DAYS;
  }

  private async generate(pool: string) {
    const ssh = (comment: string) => {
      const { privateKey } = generateKeyPairSync('ed25519');
      return { file: ed25519ToOpenSshPrivateKey(privateKey, comment), line: ed25519PublicKeyLine(privateKey, comment) };
    };
    return {
      sshHost: ssh(`portcullis-gateway@${pool}`),
      userCa: ssh(`portcullis-user-ca@${pool}`),
      hostCa: ssh(`portcullis-host-ca@${pool}`),
      ca: await generateGatewayCa(`Portcullis gateway CA (pool ${pool})`),
    };
  }

  private open(row: PoolKeysRow): PoolKeys {
    const pool = row.pool;
    const sshHostKey = this.dec(pool, 'ssh-host', row.sshHostKeyEncrypted);
    const hostCa = ed25519FromOpenSshPrivateKey(this.dec(pool, 'ssh-host-ca', row.sshHostCaEncrypted));
    const now = Date.now();
    const sshHostCertificate = signSshCertificate({
      publicKey: parseSshPublicKeyLine(row.sshHostPublicKey),
      caKey: hostCa,
      certType: 2,
      keyId: `portcullis-gateway@${pool}`,
      principals: this.tlsHosts(),
      validAfter: new Date(now - 3600_000),
      validBefore: new Date(now + 365 * 24 * 3600_000),
    });
    return {
      pool,
      sshHostKey,
      sshHostPublicKey: row.sshHostPublicKey,
      sshUserCa: ed25519FromOpenSshPrivateKey(this.dec(pool, 'ssh-user-ca', row.sshUserCaEncrypted)),
      sshUserCaPublicKey: row.sshUserCaPublicKey,
      sshHostCaPublicKey: row.sshHostCaPublicKey,
      sshHostCertificate,
      tlsCaPem: row.tlsCaPem,
      tlsCertPem: row.tlsCertPem,
      tlsKeyPem: this.dec(pool, 'tls', row.tlsKeyEncrypted),
      tlsHosts: row.tlsHosts,
    };
  }
}
