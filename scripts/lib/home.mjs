// The local state of a dev stack: `.portcullis/` (0700) with the master key, the bootstrap admin token,
// the default pool's key pair and the demo database password (files 0600). Created once, reused after.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

function readSecret(path) {
  return readFileSync(path, 'utf8').trim();
}

function writeSecret(path, value) {
  writeFileSync(path, `${value}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600); // the umask may have narrowed it further; never wider
}

/** Returns the value in `file`, creating it with `make()` if absent. `created` says which. */
function ensureSecret(home, file, make, valid) {
  const path = join(home, file);
  if (existsSync(path)) {
    const value = readSecret(path);
    if (!valid || valid(value)) return { value, created: false, path };
    throw new Error(`${path} exists but does not hold a valid value; delete it to let \`pnpm start\` make a new one`);
  }
  const value = make();
  writeSecret(path, value);
  return { value, created: true, path };
}

async function loadPoolKeyGenerator(root) {
  const mod = await import(pathToFileURL(join(root, 'libs/protocol/dist/index.js')).href);
  if (typeof mod.generatePoolKeyPair !== 'function') throw new Error('libs/protocol/dist has no generatePoolKeyPair (run `pnpm build`)');
  return mod.generatePoolKeyPair;
}

/**
 * Makes sure `home` holds every secret the dev stack needs.
 * @returns {{masterKey: string, bootstrapToken: string, bootstrapCreated: boolean, poolPrivateKey: string,
 *   poolPublicKey: string, demoDbPassword: string, home: string}}
 */
export async function ensureHome(home, { root, pool = 'default' }) {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  if ((statSync(home).mode & 0o077) !== 0) chmodSync(home, 0o700);

  const masterKey = ensureSecret(home, 'master-key', () => randomBytes(32).toString('hex'), (v) => /^[0-9a-f]{64}$/i.test(v) || Buffer.from(v, 'base64').length === 32);
  const bootstrap = ensureSecret(home, 'bootstrap-token', () => `pcb_${randomBytes(32).toString('base64url')}`, (v) => v.length >= 16);
  const demoDb = ensureSecret(home, 'demo-db-password', () => randomBytes(24).toString('base64url'), (v) => v.length >= 8);

  const privPath = join(home, `pool-${pool}.key`);
  const pubPath = join(home, `pool-${pool}.pub`);
  if (existsSync(privPath) !== existsSync(pubPath)) {
    throw new Error(`${existsSync(privPath) ? pubPath : privPath} is missing; delete both pool-${pool}.* files to make a new pair`);
  }
  if (!existsSync(privPath)) {
    const generatePoolKeyPair = await loadPoolKeyGenerator(root);
    const pair = generatePoolKeyPair();
    writeSecret(privPath, pair.privateKey);
    writeSecret(pubPath, pair.publicKey);
  }
  return {
    home,
    masterKey: masterKey.value,
    bootstrapToken: bootstrap.value,
    bootstrapCreated: bootstrap.created,
    poolPrivateKey: readSecret(privPath),
    poolPublicKey: readSecret(pubPath),
    demoDbPassword: demoDb.value,
  };
}

/**
 * Writes the api's config-signing public keys (GET /v1/gateway-config-keys, a JWK set) to
 * `<home>/config-keys.json` for GATEWAY_CONFIG_PUBLIC_KEY_FILE. Rewritten on every start: the keys belong
 * to the database and master key this run uses.
 * @returns {Promise<string>} the file's path
 */
export async function writeConfigKeys(home, api) {
  const jwks = await api.get('/v1/gateway-config-keys');
  if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0) throw new Error('the api answered no keys');
  const path = join(home, 'config-keys.json');
  writeFileSync(path, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
  return path;
}
