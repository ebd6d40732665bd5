import { fileURLToPath } from 'node:url';
import { ensureDatabase, migrate } from '../libs/db/src/migrate.js';

// Every test run gets the migrated test database; tests make their own names unique.
export default async function setup(): Promise<void> {
  const url = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/portcullis_test';
  await ensureDatabase(url);
  await migrate(url, fileURLToPath(new URL('../prisma/migrations', import.meta.url)));
}
