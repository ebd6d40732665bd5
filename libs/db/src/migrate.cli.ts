#!/usr/bin/env node
// `pnpm db:migrate`: create the database if needed and apply prisma/migrations.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_DATABASE_URL } from './client.js';
import { ensureDatabase, migrate } from './migrate.js';

const url = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
const dir = process.env.MIGRATIONS_DIR ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../prisma/migrations');
try {
  if (await ensureDatabase(url)) process.stdout.write(`created database ${new URL(url).pathname.slice(1)}\n`);
  const { applied, alreadyApplied } = await migrate(url, dir);
  process.stdout.write(`migrations: ${applied.length} applied, ${alreadyApplied.length} already applied\n`);
} catch (err) {
  process.stderr.write(`migrate: ${(err as Error).message}\n`);
  process.exit(1);
}
