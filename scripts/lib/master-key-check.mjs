// Is this master key the one the database's secrets were stored with? A second checkout (its own
// `.portcullis/`, so its own master key) pointed at the same database cannot open the first one's
// connection secrets; its seed would even overwrite the demo connection's secret under its own key.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';

/**
 * Names of the connections whose secret `masterKey` cannot decrypt (sorted).
 * @param {string} databaseUrl  a migrated Portcullis database
 * @param {string} masterKey    the text of `.portcullis/master-key`
 * @param {string} root         the checkout (for libs/protocol/dist)
 * @returns {Promise<string[]>}
 */
export async function connectionsUnderAnotherKey(databaseUrl, masterKey, root) {
  const { parseMasterKey, deriveKey, decryptAtRest } = await import(pathToFileURL(join(root, 'libs/protocol/dist/index.js')).href);
  const key = deriveKey(parseMasterKey(masterKey), 'secrets-at-rest');
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query('SELECT "name", "secretCiphertext" FROM "Connection" WHERE "secretCiphertext" IS NOT NULL ORDER BY "name"');
    return rows.filter((r) => {
      try {
        decryptAtRest(key, r.secretCiphertext, r.name);
        return false;
      } catch {
        return true;
      }
    }).map((r) => r.name);
  } finally {
    await client.end();
  }
}

/** The one line `pnpm start` prints when the master key does not match the database. */
export function keyMismatchLine({ database, home, names }) {
  const list = names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', ');
  return `database ${database} holds connection secrets (${list}) stored with another master key than ${join(home, 'master-key')} — ` +
    'another checkout\'s .portcullis/ uses this database: start with that one (PORTCULLIS_HOME=<other checkout>/.portcullis), ' +
    'point DATABASE_URL at another database, or run `pnpm start --reset-demo` to delete those connections and seed the demo again';
}
