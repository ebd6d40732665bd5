/**
 * A private, throw-away PostgreSQL cluster for tests that need what the shared local server
 * (127.0.0.1:5432, trust) cannot give: password authentication (SCRAM-SHA-256, md5, cleartext),
 * custom pg_hba.conf lines, server settings.
 *
 * ```ts
 * const pg = await startPgCluster({
 *   hba: ['host all scram_user 127.0.0.1/32 scram-sha-256', 'host all md5_user 127.0.0.1/32 md5'],
 *   roles: [
 *     { name: 'scram_user', password: 's3cret' },                                   // stored as SCRAM
 *     { name: 'md5_user', password: 'other', passwordEncryption: 'md5' },          // stored as md5
 *   ],
 *   databases: [{ name: 'app', owner: 'scram_user' }],
 * });
 * try { ... connect to pg.host:pg.port ... ; await pg.psql('select 1') } finally { await pg.stop(); }
 * ```
 *
 * - Binds 127.0.0.1 on a free port (never a fixed one); its unix socket lives in its own temp dir,
 *   so it never clashes with the system cluster or with other tests running at the same time.
 * - The server binaries come from `PG_BIN_DIR`, else the newest /usr/lib/postgresql/<v>/bin.
 * - initdb and postgres refuse to run as root: under root the cluster runs as the `postgres` OS
 *   user (via runuser) in a temp dir owned by it. As any other user it runs as that user.
 * - Unix-socket connections always `trust` (that is how `psql()` administers the cluster); the
 *   `hba` lines govern TCP. Without `hba`, TCP is `host all all 127.0.0.1/32 scram-sha-256`.
 * - Settings favour speed (fsync off, small shared_buffers): never point real data at it.
 * - `stop()` stops the server (immediate mode) and removes every file; it is idempotent. A cluster
 *   still running when the process exits is stopped by an exit hook, and, if the process is killed
 *   outright, by a detached watchdog shell that notices the process is gone (within a second).
 */
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

export interface PgClusterRole {
  name: string;
  /** Without a password the role can only log in through trust lines. */
  password?: string;
  /** How the password is stored (decides which hba methods can check it). Default scram-sha-256. */
  passwordEncryption?: 'scram-sha-256' | 'md5';
  superuser?: boolean;
  /** More CREATE ROLE options, e.g. 'CREATEDB'. */
  options?: string;
}

export interface StartPgClusterOptions {
  /** pg_hba.conf lines for TCP connections, first match wins. */
  hba?: string[];
  /** postgresql.conf settings, written as `key = 'value'` after the defaults (so they win). */
  conf?: Record<string, string | number | boolean>;
  /** Login roles to create. */
  roles?: PgClusterRole[];
  /** Databases to create (a name, or a name and its owner). */
  databases?: (string | { name: string; owner?: string })[];
  /** Directory with initdb, pg_ctl and psql. */
  binDir?: string;
}

export interface PgCluster {
  host: string;
  port: number;
  /** The superuser (trust over the unix socket). */
  superuser: string;
  dataDir: string;
  socketDir: string;
  /** Runs SQL as the superuser over the unix socket; resolves psql's unaligned, tuples-only output. */
  psql(sql: string, options?: { database?: string }): Promise<string>;
  /** The server log so far (for a failing test's message). */
  log(): string;
  stop(): Promise<void>;
}

const live = new Set<() => void>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const stop of live) stop();
  });
}

export function findPgBinDir(explicit?: string): string {
  const candidates: string[] = [];
  if (explicit) candidates.push(explicit);
  if (process.env.PG_BIN_DIR) candidates.push(process.env.PG_BIN_DIR);
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(join(root, v, 'bin'));
  }
  for (const dir of candidates) if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  throw new Error(`no PostgreSQL server binaries (initdb, pg_ctl) found; looked in ${candidates.join(', ') || root}. Set PG_BIN_DIR.`);
}


const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;
const quoteLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;
const quoteConf = (v: string | number | boolean) => `'${String(v).replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

export async function startPgCluster(options: StartPgClusterOptions = {}): Promise<PgCluster> {
  const binDir = findPgBinDir(options.binDir);
  const asRoot = process.getuid?.() === 0;
  // Under root the server runs as `postgres`, which must be able to reach the dir: use /tmp.
  const base = mkdtempSync(join(asRoot ? '/tmp' : tmpdir(), 'portcullis-pg-'));
  const dataDir = join(base, 'data');
  const logFile = join(base, 'server.log');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', TZ: 'UTC' };
  const owner = asRoot ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()) } : null;
  if (owner) chownSync(base, owner.uid, owner.gid);

  /** A server binary as the cluster's OS user. */
  const argv = (bin: string, args: string[]): [string, string[]] =>
    owner ? ['runuser', ['-u', 'postgres', '--', join(binDir, bin), ...args]] : [join(binDir, bin), args];
  /** Runs it without blocking the event loop (initdb takes seconds). */
  const run = (bin: string, args: string[]): Promise<{ status: number; output: string }> =>
    new Promise((resolve) => {
      const [cmd, a] = argv(bin, args);
      execFile(cmd, a, { env, cwd: base, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
        const status = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ status, output: `${stdout}${stderr}${err && typeof err.code !== 'number' ? String(err) : ''}` });
      });
    });
  /** Synchronous so the process exit hook can use it too. */
  const stopSync = () => {
    if (existsSync(join(dataDir, 'postmaster.pid'))) {
      const [cmd, a] = argv('pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '30']);
      spawnSync(cmd, a, { env, cwd: base, timeout: 60_000 });
    }
    rmSync(base, { recursive: true, force: true });
  };

  // Registered before anything can fail, so no server or temp dir outlives a failed start.
  installExitHook();
  live.add(stopSync);
  // Exit hooks do not run when the test worker is killed (SIGKILL, a timeout): a detached watchdog
  // stops the server and removes the dir once this process is gone.
  const [stopCmd, stopArgs] = argv('pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '30']);
  const watchdog = spawn(
    '/bin/sh',
    ['-c', 'while kill -0 "$WATCH_PID" 2>/dev/null; do sleep 1; done; if [ -f "$DATA_DIR/postmaster.pid" ]; then "$@" >/dev/null 2>&1; fi; rm -rf "$BASE_DIR"', 'pg-cluster-watchdog', stopCmd, ...stopArgs],
    { detached: true, stdio: 'ignore', env: { ...env, WATCH_PID: String(process.pid), DATA_DIR: dataDir, BASE_DIR: base } },
  );
  watchdog.unref();
  const stopWatchdog = () => {
    if (watchdog.pid !== undefined && watchdog.exitCode === null) {
      try {
        process.kill(watchdog.pid);
      } catch {
        // already gone
      }
    }
  };
  let port = 0;
  try {
    const init = await run('initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
    if (init.status !== 0) throw new Error(`initdb failed (${init.status}): ${init.output}`);

    const hba = [
      '# written by test/support/pg-cluster.ts',
      'local all all trust',
      ...(options.hba ?? ['host all all 127.0.0.1/32 scram-sha-256']),
    ];
    writeFileSync(join(dataDir, 'pg_hba.conf'), hba.join('\n') + '\n');

    let started = false;
    let lastError = '';
    // A free port can be taken between probing and binding by a test running beside us: retry.
    for (let attempt = 0; attempt < 4 && !started; attempt++) {
      port = await freePort();
      const conf: Record<string, string | number | boolean> = {
        listen_addresses: '127.0.0.1',
        port,
        unix_socket_directories: base,
        fsync: 'off',
        synchronous_commit: 'off',
        full_page_writes: 'off',
        shared_buffers: '16MB',
        max_connections: 40,
        password_encryption: 'scram-sha-256',
        logging_collector: 'off',
        log_min_messages: 'warning',
        ...options.conf,
      };
      appendFileSync(join(dataDir, 'postgresql.conf'), `\n# attempt ${attempt}\n` + Object.entries(conf).map(([k, v]) => `${k} = ${quoteConf(v)}`).join('\n') + '\n');
      const start = await run('pg_ctl', ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60']);
      if (start.status === 0) {
        started = true;
      } else {
        lastError = `${start.output}\n${existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''}`;
        if (!/could not bind|already in use|could not create any TCP\/IP sockets/i.test(lastError)) break;
      }
    }
    if (!started) throw new Error(`postgres did not start: ${lastError}`);
  } catch (err) {
    live.delete(stopSync);
    stopWatchdog();
    stopSync();
    throw err;
  }

  let stopped = false;

  const psql = (sql: string, opts: { database?: string } = {}): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(
        join(binDir, 'psql'),
        ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', base, '-p', String(port), '-U', 'postgres', '-d', opts.database ?? 'postgres', '-c', sql],
        { env, timeout: 60_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`psql failed: ${stderr || err.message}`, { cause: err })) : resolve(stdout.trim())),
      );
    });

  const cluster: PgCluster = {
    host: '127.0.0.1',
    port,
    superuser: 'postgres',
    dataDir,
    socketDir: base,
    psql,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      live.delete(stopSync);
      stopWatchdog();
      stopSync();
    },
  };

  try {
    for (const role of options.roles ?? []) {
      const parts = [`CREATE ROLE ${quoteIdent(role.name)} LOGIN`];
      if (role.superuser) parts.push('SUPERUSER');
      if (role.options) parts.push(role.options);
      if (role.password !== undefined) parts.push(`PASSWORD ${quoteLiteral(role.password)}`);
      // password_encryption decides how CREATE ROLE stores the password (and so which hba methods work).
      await psql(`SET password_encryption = ${quoteLiteral(role.passwordEncryption ?? 'scram-sha-256')}; ${parts.join(' ')};`);
    }
    for (const db of options.databases ?? []) {
      const { name, owner: dbOwner } = typeof db === 'string' ? { name: db, owner: undefined } : db;
      await psql(`CREATE DATABASE ${quoteIdent(name)}${dbOwner ? ` OWNER ${quoteIdent(dbOwner)}` : ''}`);
    }
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
