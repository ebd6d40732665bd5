import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { generate as generateCert } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPgCluster, type PgCluster } from '../../../test/support/pg-cluster.js';
import { startHarness, type Harness, type HarnessConnection } from './support/harness.js';
import { killAllPrograms, runProgram } from './support/run-program.js';

/**
 * A target that only accepts TLS (`hostssl ... scram-sha-256`, no `host` line), with a self-signed
 * certificate: the gateway's `tls: require` (and `prefer`) connection reaches it over TLS with
 * SCRAM; `disable` is refused by the target and `verify-full` cannot verify the self-signed
 * certificate — both end in a clear error that names the connection, never the target's host,
 * port, user or database.
 */

const ROLE = 'tls_only_owner';
const DB = 'tls_secret_db';
const PASSWORD = 'tls-s3cret-pw';

let cluster: PgCluster;
let certDir: string;
let h: Harness;

beforeAll(async () => {
  // The server runs as `postgres` when we are root: it must own its key (0600) and reach the dir.
  certDir = mkdtempSync('/tmp/portcullis-tls-');
  const pems = await generateCert([{ name: 'commonName', value: 'tls-target.internal' }], { keySize: 2048, algorithm: 'sha256' } as never);
  const cert = join(certDir, 'server.crt');
  const key = join(certDir, 'server.key');
  writeFileSync(cert, pems.cert);
  writeFileSync(key, pems.private);
  chmodSync(key, 0o600);
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    for (const p of [certDir, cert, key]) chownSync(p, uid, gid);
  }
  cluster = await startPgCluster({
    hba: [`hostssl all ${ROLE} 127.0.0.1/32 scram-sha-256`],
    conf: { ssl: 'on', ssl_cert_file: cert, ssl_key_file: key },
    roles: [{ name: ROLE, password: PASSWORD }],
    databases: [{ name: DB, owner: ROLE }],
  });
  await cluster.psql(`CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES (1, 'over tls'); ALTER TABLE notes OWNER TO ${ROLE};`, { database: DB });
  const base: HarnessConnection = {
    name: 'tls', kind: 'postgres', host: cluster.host, port: cluster.port, database: DB, username: ROLE, password: PASSWORD,
    tls: 'require', allowedGroups: ['engineers'], policy: null, recording: 'best-effort', approvalMode: 'wait',
  };
  h = await startHarness({
    connections: [base, { ...base, name: 'tls-prefer', tls: 'prefer' }, { ...base, name: 'tls-disable', tls: 'disable' }, { ...base, name: 'tls-verify', tls: 'verify-full' }],
  });
});
afterAll(async () => {
  killAllPrograms();
  await h?.stop();
  await cluster?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

async function connect(name: string): Promise<pg.Client> {
  const c = new pg.Client(h.clientConfig(await h.credential({ cn: name }), name));
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

function expectNoLeak(text: string): void {
  for (const secret of [ROLE, DB, PASSWORD, String(cluster.port), 'tls-target.internal']) expect(text).not.toContain(secret);
}

describe('TLS to the target', () => {
  it.each(['tls', 'tls-prefer'])('connection %s reaches a hostssl-only target over TLS with SCRAM', async (name) => {
    const c = await connect(name);
    try {
      const r = await c.query('SELECT s.ssl, s.version IS NOT NULL AS has_version, current_user AS who, (SELECT body FROM notes WHERE id = 1) AS body FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()');
      expect(r.rows[0]).toMatchObject({ ssl: true, has_version: true, who: ROLE, body: 'over tls' });
      // a larger result over the TLS upstream (many TLS records)
      const big = await c.query(`SELECT string_agg(md5(g::text), '') AS s FROM generate_series(1, 20000) g`);
      expect(big.rows[0].s).toHaveLength(20000 * 32);
    } finally {
      await c.end();
    }
  });

  it('tls disable: the target refuses (no hostssl match); the client gets a clear error without the target details', async () => {
    const err = await connect('tls-disable').then(
      async (c) => {
        await c.end();
        return null;
      },
      (e: pg.DatabaseError) => e,
    );
    expect(err).not.toBeNull();
    expect(err!.code).toBe('08001');
    expect(err!.message).toBe('could not connect to the target of connection "tls-disable"');
    expectNoLeak(JSON.stringify({ ...err, message: err!.message }));
    // and psql shows the same
    const r = await runProgram('psql', ['-X', '-d', h.connectionUri(await h.credential({ cn: 'tls-disable' }), 'tls-disable'), '-c', 'select 1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/could not connect to the target of connection "tls-disable"/);
    expectNoLeak(r.stderr);
  });

  it('tls verify-full: a self-signed target certificate is refused, with the same clear error', async () => {
    const err = await connect('tls-verify').then(
      async (c) => {
        await c.end();
        return null;
      },
      (e: pg.DatabaseError) => e,
    );
    expect(err?.code).toBe('08001');
    expect(err?.message).toBe('could not connect to the target of connection "tls-verify"');
    expectNoLeak(JSON.stringify({ ...err, message: err?.message }));
  });
});
