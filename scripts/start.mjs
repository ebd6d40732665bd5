#!/usr/bin/env node
// `pnpm start`: the whole Portcullis stack on this machine, with a demo.
//
//   services → build → .portcullis/ secrets → migrate → demo target database → dev IdP + four apps
//   → seed the demo over REST → next steps → "Portcullis is ready" → Ctrl-C stops everything.
//
// Every port, URL and name comes from env (see scripts/lib/config.mjs), so a test can run an isolated
// copy as a child process: set PORTCULLIS_HOME, the *_PORT variables, DATABASE_URL, NATS_PREFIX,
// APPROVALS_QUEUE_PREFIX and PORTCULLIS_DEMO_DB, wait for the line "Portcullis is ready", send SIGINT.
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildReason, ENTRY_POINTS, missingEntryPoints, runBuild } from './lib/build.mjs';
import { paint, Supervisor, useColour } from './lib/children.mjs';
import { ConfigError, loadConfig } from './lib/config.mjs';
import { ensureDemoDatabase } from './lib/demo-db.mjs';
import { ensureHome, writeConfigKeys } from './lib/home.mjs';
import { connectionsUnderAnotherKey, keyMismatchLine } from './lib/master-key-check.mjs';
import { apiClient, waitForOk } from './lib/http.mjs';
import { nextSteps } from './lib/next-steps.mjs';
import { seedDemo, seedSshDemo } from './lib/seed.mjs';
import { prepareDemoSshd } from './lib/demo-sshd.mjs';
import { checkServices } from './lib/services.mjs';

const colour = useColour();
const bold = (s) => paint(1, s, colour);
const dim = (s) => paint(2, s, colour);
const red = (s) => paint(31, s, colour);
const green = (s) => paint(32, s, colour);

const say = (line = '') => process.stdout.write(`${line}\n`);
const fail = (line) => process.stderr.write(`${red('✗')} ${line}\n`);
const ok = (line) => say(`${green('✓')} ${line}`);

let supervisor;
let shuttingDown = false;

async function shutdown(code, why) {
  // Whoever comes second waits for the first shutdown's process.exit, never carries on.
  if (shuttingDown) return new Promise(() => undefined);
  shuttingDown = true;
  if (why) say(dim(why));
  if (supervisor) await supervisor.stop(Number(process.env.PORTCULLIS_STOP_GRACE_MS ?? 10_000));
  process.exit(code);
}

function onSignal(signal) {
  if (shuttingDown) {
    // Second Ctrl-C: no more waiting.
    supervisor?.killAll();
    process.exit(130);
  }
  say();
  void shutdown(0, `${signal}: stopping every app…`);
}
process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));

function portFree(port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (err) => resolve(err.code !== 'EADDRINUSE' && err.code !== 'EACCES'));
    srv.listen({ port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

async function main() {
  let cfg;
  try {
    cfg = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      fail(err.message);
      process.exit(1);
    }
    throw err;
  }

  say(bold('Portcullis — starting the stack with a demo'));

  // 1. Services: one clear line for each that does not answer.
  const services = await checkServices(cfg);
  for (const r of services.results) (r.ok ? ok : fail)(r.line);
  if (!services.ok) process.exit(1);

  // 2. Build when dist/ is missing or older than the sources.
  if (!cfg.skipBuild) {
    const reason = buildReason(cfg.root);
    if (reason) {
      say(dim(`building: ${reason}`));
      if (!runBuild(cfg.root, (line) => say(dim(`  ${line}`)))) {
        const missing = missingEntryPoints(cfg.root);
        if (missing.length > 0) {
          fail(`the build failed and ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing: fix the errors above, then run \`pnpm start\` again`);
          process.exit(1);
        }
        say(red('! the build failed; starting the previous build'));
      } else {
        ok('built');
      }
    }
  } else {
    const missing = missingEntryPoints(cfg.root);
    if (missing.length > 0) {
      fail(`PORTCULLIS_SKIP_BUILD is set but ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing: run \`pnpm build\``);
      process.exit(1);
    }
  }

  // 3. Secrets in .portcullis/.
  const secrets = await ensureHome(cfg.home, { root: cfg.root, pool: cfg.pool });
  ok(`secrets in ${cfg.home} (master key, bootstrap token, pool ${cfg.pool} key pair, demo database password)`);
  if (secrets.bootstrapCreated) {
    say(`  ${bold('Bootstrap admin token')} (shown once; also in ${join(cfg.home, 'bootstrap-token')}):`);
    say(`  ${secrets.bootstrapToken}`);
  }

  // 4. Database and migrations.
  const { ensureDatabase, migrate } = await import(pathToFileURL(join(cfg.root, ENTRY_POINTS.migrate)).href);
  const created = await ensureDatabase(cfg.databaseUrl);
  const migrated = await migrate(cfg.databaseUrl, join(cfg.root, 'prisma/migrations'));
  ok(`database ${cfg.database.pathname.slice(1)}${created ? ' created' : ''}: ${migrated.applied.length} migration(s) applied, ${migrated.alreadyApplied.length} already there`);

  // A master key that does not match the database: say so now, not after a long wait for the gateway.
  const resetDemo = process.argv.includes('--reset-demo');
  const foreign = await connectionsUnderAnotherKey(cfg.databaseUrl, secrets.masterKey, cfg.root);
  if (foreign.length > 0 && !resetDemo) {
    fail(keyMismatchLine({ database: cfg.database.pathname.slice(1), home: cfg.home, names: foreign }));
    process.exit(1);
  }

  // 5. The demo target.
  const demo = await ensureDemoDatabase(cfg.databaseUrl, { database: cfg.demo.database, role: cfg.demo.role, password: secrets.demoDbPassword });
  ok(`demo target ${cfg.demo.database} (owner ${cfg.demo.role})${demo.createdDatabase ? ' created' : ''}${demo.insertedRows ? `, ${demo.insertedRows} synthetic customers` : ''}`);

  // 6. Ports.
  const names = { api: 'API_PORT', approvals: 'APPROVALS_HTTP_PORT', recorder: 'RECORDER_HTTP_PORT', gatewayHttp: 'GATEWAY_HTTP_PORT', gatewayPg: 'GATEWAY_PG_PORT', gatewaySsh: 'GATEWAY_SSH_PORT', gatewayKube: 'GATEWAY_KUBERNETES_PORT', idp: 'DEV_IDP_PORT' };
  const busy = [];
  for (const [k, port] of Object.entries(cfg.ports)) if (!(await portFree(port))) busy.push(`${port} (${names[k]})`);
  if (busy.length > 0) {
    fail(`port${busy.length > 1 ? 's' : ''} ${busy.join(', ')} already in use — is another \`pnpm start\` running? Stop it, or set ${busy.length > 1 ? 'those variables' : 'that variable'} to free ports`);
    process.exit(1);
  }

  // 7. The apps.
  supervisor = new Supervisor({
    colour,
    format: cfg.logFormat,
    onExit: (name, code, signal) => {
      fail(`${name} exited (${signal ?? `code ${code}`}); stopping the rest`);
      void shutdown(1);
    },
  });
  const base = {
    ...process.env,
    DATABASE_URL: cfg.databaseUrl,
    REDIS_URL: cfg.redisUrl,
    NATS_URL: cfg.natsUrl,
    NATS_PREFIX: cfg.natsPrefix,
    LOG_LEVEL: cfg.logLevel,
    ...(cfg.approvalsQueuePrefix ? { APPROVALS_QUEUE_PREFIX: cfg.approvalsQueuePrefix } : {}),
  };
  const withKey = { PORTCULLIS_MASTER_KEY: secrets.masterKey };
  const callback = `${cfg.apiUrl}/v1/auth/callback`;
  const node = process.execPath;
  // The gateway runs with a small young generation: 1,000 idle sessions stay under 150 MB (docs/performance.md).
  const nodeArgs = { gateway: ['--max-semi-space-size=2'] };
  const run = (name, entry, env) => supervisor.start(name, node, [...(nodeArgs[name] ?? []), join(cfg.root, entry)], { cwd: cfg.root, env: { ...base, ...env } });
  const alive = (name) => () => supervisor.running(name);
  const ready = async (name, url) => {
    const r = await waitForOk(url, { timeoutMs: cfg.readyTimeoutMs, alive: alive(name) });
    if (!r.ok) {
      fail(`${name} is not ready at ${url}: ${r.reason}`);
      await shutdown(1);
    }
  };

  run('idp', ENTRY_POINTS.idp, { DEV_IDP_PORT: String(cfg.ports.idp), DEV_IDP_HOST: '127.0.0.1', DEV_IDP_REDIRECT_URIS: callback });
  await ready('idp', `${cfg.idpIssuer}/.well-known/openid-configuration`);

  run('api', ENTRY_POINTS.api, {
    ...withKey,
    API_PORT: String(cfg.ports.api),
    PORTCULLIS_BOOTSTRAP_TOKEN: secrets.bootstrapToken,
    OIDC_ISSUER_URL: cfg.idpIssuer,
    OIDC_CLIENT_ID: 'portcullis-api',
    OIDC_CLIENT_SECRET: 'portcullis-api-secret',
    OIDC_REDIRECT_URI: callback,
    GATEWAY_PUBLIC_HOST: '127.0.0.1',
    GATEWAY_PUBLIC_PORT: String(cfg.ports.gatewayPg),
    GATEWAY_SSH_PUBLIC_PORT: String(cfg.ports.gatewaySsh),
    GATEWAY_KUBERNETES_PUBLIC_PORT: String(cfg.ports.gatewayKube),
  });
  run('approvals', ENTRY_POINTS.approvals, {
    ...withKey,
    APPROVALS_HTTP_PORT: String(cfg.ports.approvals),
    APPROVALS_HTTP_HOST: '127.0.0.1',
    APPROVALS_API_URL: cfg.apiUrl,
  });
  run('recorder', ENTRY_POINTS.recorder, { ...withKey, RECORDER_HTTP_PORT: String(cfg.ports.recorder), RECORDER_HTTP_HOST: '127.0.0.1' });
  await ready('api', `${cfg.apiUrl}/readyz`);

  // The gateway trusts only snapshots signed by the api's key: pin its public half in .portcullis/ and
  // hand the gateway that file, as a deployment hands it GATEWAY_CONFIG_PUBLIC_KEY.
  let configKeysFile;
  try {
    configKeysFile = await writeConfigKeys(cfg.home, apiClient(cfg.apiUrl, secrets.bootstrapToken));
  } catch (err) {
    fail(`cannot read the api's config-signing keys: ${err.message}`);
    await shutdown(1);
  }
  run('gateway', ENTRY_POINTS.gateway, {
    GATEWAY_POOL: cfg.pool,
    GATEWAY_ID: process.env.GATEWAY_ID?.trim() || `${cfg.pool}-local-1`,
    GATEWAY_POOL_KEY: secrets.poolPrivateKey,
    GATEWAY_CONFIG_PUBLIC_KEY_FILE: configKeysFile,
    GATEWAY_PG_PORT: String(cfg.ports.gatewayPg),
    GATEWAY_PG_HOST: '127.0.0.1',
    GATEWAY_HTTP_PORT: String(cfg.ports.gatewayHttp),
    GATEWAY_HTTP_HOST: '127.0.0.1',
    GATEWAY_SSH_PORT: String(cfg.ports.gatewaySsh),
    GATEWAY_SSH_HOST: '127.0.0.1',
    GATEWAY_KUBERNETES_PORT: String(cfg.ports.gatewayKube),
    GATEWAY_KUBERNETES_HOST: '127.0.0.1',
    // Dev mode has no certificate; psql's sslmode=prefer falls back to plaintext on loopback.
    GATEWAY_ALLOW_PLAINTEXT: 'true',
  });

  // 8. Seed the demo (idempotent), then wait for the rest: the gateway is ready once it has its pool's config.
  try {
    // --reset-demo: the connections this master key cannot open go (through the api, so it is audited);
    // the seed then creates the demo connection again under this key.
    const admin = apiClient(cfg.apiUrl, secrets.bootstrapToken);
    for (const name of foreign) {
      await admin.del(`/v1/connections/${encodeURIComponent(name)}`);
      say(dim(`  reset: connection ${name} deleted (its secret was stored with another master key)`));
    }
    await seedDemo(apiClient(cfg.apiUrl, secrets.bootstrapToken), {
      pool: cfg.pool,
      poolPublicKey: secrets.poolPublicKey,
      idpIssuer: cfg.idpIssuer,
      connection: cfg.demo.connection,
      target: { host: demo.host, port: demo.port, database: cfg.demo.database, username: cfg.demo.role, password: secrets.demoDbPassword },
    }, (line) => say(dim(`  seed: ${line}`)));
  } catch (err) {
    fail(`seeding the demo failed: ${err.message}`);
    await shutdown(1);
  }
  ok('demo seeded: groups, users alice/bob/carol, pool key, policy default, connection demo, trust policy demo-agent');

  // 9. The SSH demo target, where this machine has sshd: a private sshd stopped with the stack.
  let sshDemo = null;
  const sshd = await prepareDemoSshd(cfg.home);
  if (sshd.missing) {
    say(dim(`  ${sshd.missing}`));
  } else {
    supervisor.start('sshd', sshd.command, sshd.args, { cwd: cfg.root, env: process.env });
    try {
      const name = await seedSshDemo(apiClient(cfg.apiUrl, secrets.bootstrapToken), {
        pool: cfg.pool,
        target: { host: sshd.host, port: sshd.port, user: sshd.user, hostPublicKey: sshd.hostPublicKey, privateKey: sshd.clientPrivateKey },
      }, (line) => say(dim(`  seed: ${line}`)));
      sshDemo = { connection: name, port: cfg.ports.gatewaySsh, user: sshd.user, sshdPort: sshd.port };
      ok(`SSH demo target: a private sshd on 127.0.0.1:${sshd.port} (login ${sshd.user}), connection ${name}`);
    } catch (err) {
      fail(`seeding the SSH demo failed: ${err.message}`);
      await shutdown(1);
    }
  }

  await Promise.all([
    ready('approvals', `http://127.0.0.1:${cfg.ports.approvals}/readyz`),
    ready('recorder', `http://127.0.0.1:${cfg.ports.recorder}/readyz`),
    ready('gateway', `http://127.0.0.1:${cfg.ports.gatewayHttp}/readyz`),
  ]);

  for (const line of nextSteps(cfg, { bold, dim, sshDemo })) say(line);
  say(green(bold(`Portcullis is ready — api ${cfg.apiUrl}, gateway 127.0.0.1:${cfg.ports.gatewayPg}. Ctrl-C stops everything.`)));
}

main().catch(async (err) => {
  fail(err?.message ?? String(err));
  if (process.env.PORTCULLIS_DEBUG) process.stderr.write(`${err?.stack ?? ''}\n`);
  await shutdown(1);
});
