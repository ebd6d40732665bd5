import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { certificateDaysLeft, generateGatewayCa, issueGatewayServerCert, TlsCertError } from './tls-certs.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'tls-certs-spec-'));
const servers: Server[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  rmSync(dir, { recursive: true, force: true });
});

describe('gateway TLS certificates', () => {
  it('a CA and a server certificate for localhost, 127.0.0.1 and a public name that curl verifies against the CA', async () => {
    const ca = await generateGatewayCa('portcullis pool default');
    const cert = await issueGatewayServerCert(ca, ['localhost', '127.0.0.1', 'gw.example.test', 'localhost']);
    expect(cert.hosts).toEqual(['localhost', '127.0.0.1', 'gw.example.test']);
    const x = new X509Certificate(cert.certPem);
    expect(x.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, DNS:gw.example.test');
    expect(x.checkIssued(new X509Certificate(ca.caPem))).toBe(true);
    expect(new X509Certificate(ca.caPem).ca).toBe(true);
    expect(certificateDaysLeft(cert.certPem)).toBeGreaterThan(360);

    const server = createServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => res.end('ok'));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, ca.caPem);
    for (const host of ['127.0.0.1', 'localhost']) {
      const { stdout } = await run('curl', ['-sS', '--cacert', caFile, `https://${host}:${port}/`]);
      expect(stdout).toBe('ok');
    }
    // a name the certificate does not hold is refused by the client
    await expect(run('curl', ['-sS', '--cacert', caFile, '--resolve', `other.test:${port}:127.0.0.1`, `https://other.test:${port}/`])).rejects.toThrow();
    // and another CA does not verify it
    const other = await generateGatewayCa('other');
    writeFileSync(join(dir, 'other.pem'), other.caPem);
    await expect(run('curl', ['-sS', '--cacert', join(dir, 'other.pem'), `https://127.0.0.1:${port}/`])).rejects.toThrow();
  });

  it('refuses a certificate without hosts', async () => {
    await expect(issueGatewayServerCert(await generateGatewayCa('x'), [])).rejects.toThrow(TlsCertError);
  });
});
