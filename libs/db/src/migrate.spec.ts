import { randomUUID } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureDatabase, migrate, MigrationError } from './migrate.js';

const admin = 'postgresql://postgres@127.0.0.1:5432/postgres';
const created: string[] = [];
const dirs: string[] = [];

async function scratchDb(): Promise<string> {
  const name = `portcullis_mig_${randomUUID().slice(0, 8)}`;
  created.push(name);
  const url = `postgresql://postgres@127.0.0.1:5432/${name}`;
  expect(await ensureDatabase(url)).toBe(true);
  return url;
}

async function migrationsDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mig-'));
  dirs.push(dir);
  for (const [name, sql] of Object.entries(files)) {
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, 'migration.sql'), sql);
  }
  return dir;
}

async function query(url: string, sql: string) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

afterAll(async () => {
  for (const name of created) await query(admin, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('migrate', () => {
  it('applies the project migrations once, with Prisma bookkeeping', async () => {
    const url = await scratchDb();
    expect(await ensureDatabase(url)).toBe(false);
    const dir = fileURLToPath(new URL('../../../prisma/migrations', import.meta.url));
    const first = await migrate(url, dir);
    expect(first.applied.length).toBeGreaterThan(0);
    const second = await migrate(url, dir);
    expect(second).toEqual({ applied: [], alreadyApplied: first.applied });
    const rows = await query(url, 'SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations"');
    expect(rows).toHaveLength(first.applied.length);
    expect(rows[0].checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[0].finished_at).not.toBeNull();
  });

  it('refuses a migration changed after it was applied', async () => {
    const url = await scratchDb();
    const dir = await migrationsDir({ '001_a': 'CREATE TABLE a (id int);' });
    await migrate(url, dir);
    await writeFile(join(dir, '001_a', 'migration.sql'), 'CREATE TABLE a (id bigint);');
    await expect(migrate(url, dir)).rejects.toThrow(/was changed after it was applied/);
  });

  it('rolls back a failing migration and refuses to continue past it', async () => {
    const url = await scratchDb();
    const dir = await migrationsDir({ '001_ok': 'CREATE TABLE ok (id int);', '002_bad': 'CREATE TABLE half (id int); SELECT nope FROM missing;' });
    await expect(migrate(url, dir)).rejects.toBeInstanceOf(MigrationError);
    const tables = await query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
    expect(tables.map((t) => t.tablename)).toEqual(['_prisma_migrations', 'ok']);
    await writeFile(join(dir, '002_bad', 'migration.sql'), 'CREATE TABLE fixed (id int);');
    await expect(migrate(url, dir)).rejects.toThrow(/failed earlier/);
  });

  it('serialises concurrent runners', async () => {
    const url = await scratchDb();
    const dir = await migrationsDir({ '001_a': 'CREATE TABLE a (id int);', '002_b': 'CREATE TABLE b (id int);' });
    const results = await Promise.all([migrate(url, dir), migrate(url, dir), migrate(url, dir)]);
    expect(results.reduce((n, r) => n + r.applied.length, 0)).toBe(2);
  });
});
