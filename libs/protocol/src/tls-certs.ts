import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';
import { PortcullisError } from './errors.js';

/**
 * The pool's gateway TLS material for the Kubernetes HTTPS listener: a CA (what kubeconfigs pin as
 * certificate-authority-data) and a server certificate it signs, ECDSA P-256 (every TLS client,
 * Go's crypto/tls included, speaks it). Generated once per pool by the api and kept encrypted.
 */
export class TlsCertError extends PortcullisError {}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 3600 * 1000;

x509.cryptoProvider.set(webcrypto as never);

export interface GatewayTlsCa {
  caPem: string;
  /** PKCS#8 PEM */
  caKeyPem: string;
}

export interface GatewayTlsCert {
  certPem: string;
  /** PKCS#8 PEM */
  keyPem: string;
  /** the names and addresses it is valid for */
  hosts: string[];
}

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive
  return b.toString('hex');
}

/** A CA valid for ten years. */
export async function generateGatewayCa(commonName: string): Promise<GatewayTlsCa> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName.replace(/[,=+<>#;\\"]/g, '_')}`,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 3650 * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { caPem: cert.toString('pem'), caKeyPem: await pkcs8Pem(keys.privateKey) };
}

/** A server certificate for `hosts` (DNS names and IP addresses), signed by the CA, valid for a year. */
export async function issueGatewayServerCert(ca: GatewayTlsCa, hosts: string[]): Promise<GatewayTlsCert> {
  const unique = [...new Set(hosts.map((h) => h.replace(/^\[|\]$/g, '')).filter(Boolean))];
  if (!unique.length) throw new TlsCertError('a server certificate needs at least one host');
  const caCert = new x509.X509Certificate(ca.caPem);
  const caDer = createPrivateKey(ca.caKeyPem).export({ format: 'der', type: 'pkcs8' });
  const caKey = await webcrypto.subtle.importKey('pkcs8', caDer, ALG, false, ['sign']);
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${unique[0]!.replace(/[,=+<>#;\\"]/g, '_')}`,
    issuer: caCert.subject,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 365 * DAY),
    publicKey: keys.publicKey,
    signingKey: caKey as never,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(unique.map((h) => (isIP(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h }))),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await pkcs8Pem(keys.privateKey), hosts: unique };
}

/** Days until `certPem` expires (negative once it has). */
export function certificateDaysLeft(certPem: string, now = Date.now()): number {
  return (new Date(new X509Certificate(certPem).validTo).getTime() - now) / DAY;
}
