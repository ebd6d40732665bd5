import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// One runner for every package. Tests import the libs from source (no build needed);
// end-to-end tests that spawn apps use the compiled dist/ that `pnpm build` makes.
export default defineConfig({
  resolve: {
    alias: {
      '@portcullis/protocol': src('./libs/protocol/src/index.ts'),
      // the loader entry before the package's own: an alias also matches what starts with `<key>/`
      '@portcullis/policy/loader': src('./libs/policy/src/loader.ts'),
      '@portcullis/policy': src('./libs/policy/src/index.ts'),
      '@portcullis/db': src('./libs/db/src/index.ts'),
    },
  },
  test: {
    include: ['libs/*/src/**/*.spec.ts', 'apps/*/src/**/*.spec.ts', 'apps/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['./test/global-setup.ts'],
    env: {
      DATABASE_URL: process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/portcullis_test',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    },
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
