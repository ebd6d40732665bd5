#!/usr/bin/env node
// Builds the gateway's native code with node-gyp against the headers of the Node.js that runs this script
// (no download: node-gyp is pointed at them):
//  - ssh2's optional crypto binding (its lib/protocol/crypto, sshcrypto.node): one OpenSSL context per
//    direction for AES-GCM, AES-CTR + HMAC and ChaCha20-Poly1305. Without it ssh2 makes a cipher object per
//    packet and computes Poly1305 in JavaScript — the gateway's SSH relay then costs several times the CPU
//    per byte. pnpm runs no dependency's install script (pnpm 10), so the root `postinstall` runs this
//    with `--ssh2` (pnpm install builds it), and `pnpm build` checks it again. A binding that loads is kept.
//  - the fast lane (apps/gateway/native/fast_lane.c), on `pnpm build` only.
// Without a compiler or the headers, the gateway still works (ssh2 in JavaScript, relays in JavaScript):
// this prints why and exits 0 — except under CI=true or PORTCULLIS_REQUIRE_NATIVE=1 (the Docker image),
// where a missing piece is a failed build.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = join(root, 'apps/gateway/native');
const strict = process.env.CI === 'true' || process.env.PORTCULLIS_REQUIRE_NATIVE === '1';
const ssh2Only = process.argv.includes('--ssh2');

function giveUp(what, why, consequence) {
  const msg = `${what} not built: ${why}. ${consequence}`;
  if (strict) {
    console.error(`error: ${msg}`);
    process.exit(1);
  }
  console.warn(`warning: ${msg}`);
}

/** null when it is built, else why not */
function build(dir, built, args = []) {
  if (process.env.PORTCULLIS_NO_NATIVE === '1') return 'PORTCULLIS_NO_NATIVE=1';
  // Node's own headers: <prefix>/include/node next to <prefix>/bin/node (Debian's nodejs, the official tarballs)
  const nodedir = process.env.npm_config_nodedir || dirname(dirname(process.execPath));
  if (!existsSync(join(nodedir, 'include/node/node_api.h'))) return `no Node.js headers under ${nodedir}/include/node (set npm_config_nodedir)`;
  let gyp;
  try {
    gyp = createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return 'node-gyp is not installed (pnpm install)';
  }
  try {
    execFileSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, '--loglevel=warn', ...args], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  } catch {
    return 'node-gyp failed (see above; it needs python3, make and a C/C++ compiler)';
  }
  if (!existsSync(built)) return `${built} is missing after the build`;
  return null;
}

// ssh2's crypto binding, where the gateway's ssh2 is (the version its lockfile pins)
{
  const gatewayRequire = createRequire(join(root, 'apps/gateway/package.json'));
  const crypto = join(dirname(gatewayRequire.resolve('ssh2/package.json')), 'lib/protocol/crypto');
  const built = join(crypto, 'build/Release/sshcrypto.node');
  const loads = () => {
    try {
      return typeof createRequire(built)(built).AESGCMCipher === 'function';
    } catch {
      return false;
    }
  };
  if (existsSync(built) && loads()) {
    console.log(`ssh2 crypto binding present: ${built}`);
  } else {
    // ssh2's binding.gyp compiles for the OpenSSL major version Node runs with (3: EVP_MAC for Poly1305)
    const why = build(crypto, built, [`--real_openssl_major=${/^\d+/.exec(process.versions.openssl)[0]}`]);
    if (why) giveUp('ssh2 crypto binding', why, 'SSH sessions through the gateway will encrypt in JavaScript (several times the CPU per byte).');
    else if (!loads()) giveUp('ssh2 crypto binding', `${built} was built but does not load`, 'SSH sessions through the gateway will encrypt in JavaScript.');
    else console.log(`ssh2 crypto binding built: ${built}`);
  }
}

if (!ssh2Only) {
  const built = join(native, 'build/Release/fast_lane.node');
  const why = build(native, built);
  if (why) giveUp('fast lane', why, 'The gateway will relay every session in JavaScript.');
  else console.log(`fast lane built: ${built}`);
}
