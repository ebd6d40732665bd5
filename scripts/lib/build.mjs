// Builds the workspace when a compiled entry point is missing or a source file is newer than its build.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const PROJECTS = ['libs/protocol', 'libs/policy', 'libs/db', 'apps/api', 'apps/gateway', 'apps/approvals', 'apps/recorder', 'apps/cli'];

export const ENTRY_POINTS = {
  api: 'apps/api/dist/main.js',
  idp: 'apps/api/dist/dev-idp/dev-idp.main.js',
  gateway: 'apps/gateway/dist/main.js',
  approvals: 'apps/approvals/dist/main.js',
  recorder: 'apps/recorder/dist/main.js',
  protocol: 'libs/protocol/dist/index.js',
  migrate: 'libs/db/dist/migrate.js',
  console: 'apps/api/console/dist/index.html',
};

function newestMtime(dir) {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (entry.name.endsWith('.ts') && !/\.(spec|test)\.ts$/.test(entry.name)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Why a build is needed, or null when every dist/ is there and newer than its sources. */
export function buildReason(root) {
  if (!existsSync(join(root, 'libs/db/src/generated'))) return 'the Prisma client is not generated';
  for (const [name, entry] of Object.entries(ENTRY_POINTS)) {
    if (!existsSync(join(root, entry))) return `${entry} is missing (${name})`;
  }
  for (const project of PROJECTS) {
    const info = join(root, project, 'dist/.tsbuildinfo');
    if (!existsSync(info)) return `${project} has not been built`;
    if (newestMtime(join(root, project, 'src')) > statSync(info).mtimeMs) return `${project}/src changed since the last build`;
  }
  return null;
}

export function missingEntryPoints(root) {
  return Object.values(ENTRY_POINTS).filter((e) => !existsSync(join(root, e)));
}

/** Runs `pnpm db:generate` (if needed) and `pnpm build`, output streamed through `log`. Returns success. */
export function runBuild(root, log) {
  const steps = [];
  if (!existsSync(join(root, 'libs/db/src/generated'))) steps.push(['db:generate']);
  steps.push(['build']);
  for (const args of steps) {
    log(`pnpm ${args.join(' ')}`);
    const r = spawnSync('pnpm', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
    if (r.error || r.status !== 0) {
      for (const line of output.split('\n').slice(0, 40)) if (line) log(line);
      if (r.error) log(r.error.message);
      return false;
    }
  }
  return true;
}
