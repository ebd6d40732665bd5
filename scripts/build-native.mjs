#!/usr/bin/env node
// Builds the gateway's native fast lane (apps/gateway/native/fast_lane.c) with node-gyp against the
// headers of the Node.js that runs this script (no download: node-gyp is pointed at them).
// Without a C compiler or the headers, the gateway still works (it relays in JavaScript): this
// prints why and exits 0 — except under CI=true or PORTCULLIS_REQUIRE_NATIVE=1 (the Docker image),
// where a missing lane is a failed build.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = join(root, 'apps/gateway/native');
const strict = process.env.CI === 'true' || process.env.PORTCULLIS_REQUIRE_NATIVE === '1';

function giveUp(why) {
  const msg = `fast lane not built: ${why}. The gateway will relay every session in JavaScript.`;
  if (strict) {
    console.error(`error: ${msg}`);
    process.exit(1);
  }
  console.warn(`warning: ${msg}`);
  process.exit(0);
}

if (process.env.PORTCULLIS_NO_NATIVE === '1') giveUp('PORTCULLIS_NO_NATIVE=1');
// Node's own headers: <prefix>/include/node next to <prefix>/bin/node (Debian's nodejs, the official tarballs)
const nodedir = process.env.npm_config_nodedir || dirname(dirname(process.execPath));
if (!existsSync(join(nodedir, 'include/node/node_api.h'))) giveUp(`no Node.js headers under ${nodedir}/include/node (set npm_config_nodedir)`);
let gyp;
try {
  gyp = createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
} catch {
  giveUp('node-gyp is not installed (pnpm install)');
}
try {
  execFileSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, '--loglevel=warn'], { cwd: native, stdio: ['ignore', 'ignore', 'inherit'] });
} catch {
  giveUp('node-gyp failed (see above; it needs python3, make and a C compiler)');
}
const built = join(native, 'build/Release/fast_lane.node');
if (!existsSync(built)) giveUp(`${built} is missing after the build`);
console.log(`fast lane built: ${built}`);
