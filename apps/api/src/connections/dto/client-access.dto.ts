import { z } from 'zod';

export const sshCertificateBodySchema = z.strictObject({
  /** the OpenSSH public key to certify (`ssh-ed25519 AAAA…`, ecdsa or rsa ≥ 2048 bits) */
  publicKey: z.string().min(1).max(16_384),
  /** `fail-fast`: commands needing approval fail at once instead of waiting (non-interactive agents) */
  mode: z.enum(['wait', 'fail-fast']).optional(),
});
export type SshCertificateBody = z.infer<typeof sshCertificateBodySchema>;

export const sshCertificateResponseSchema = z.object({
  /** `<type>-cert-v01@openssh.com AAAA… comment`: save as `<key>-cert.pub` or pass with -o CertificateFile= */
  certificate: z.string(),
  expiresAt: z.string(),
  /** the credential the certificate's key id carries (POST /v1/auth/revoke takes it) */
  jti: z.string(),
  /** known_hosts lines for the gateway (GET /v1/connections/{name}/ssh-known-hosts) */
  knownHosts: z.string(),
  /** the certificate's principal: the connection name, which is also the user to log in as */
  principal: z.string(),
  user: z.string(),
  host: z.string(),
  port: z.number().int(),
  /** ssh://<name>@<host>:<port> */
  uri: z.string(),
});
export type SshCertificateResponse = z.infer<typeof sshCertificateResponseSchema>;

export const kubeconfigQuerySchema = z.strictObject({
  /** `static`: embed a fresh gateway credential as the bearer token (agents that cannot run an exec plugin) */
  token: z.enum(['exec', 'static']).default('exec'),
  /** the context's default namespace */
  namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'expected a Kubernetes namespace name').optional(),
  mode: z.enum(['wait', 'fail-fast']).optional(),
});
export type KubeconfigQuery = z.infer<typeof kubeconfigQuerySchema>;
