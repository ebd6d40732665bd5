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
    // CI is a 2-vCPU machine: two test files at a time, each in its own process (forks: native addons —
    // ssh2's crypto binding, the fast lane — and the stacks a file starts stay in it).
    pool: 'forks',
    maxWorkers: 2,
    // Tests drive real peers (sshd, kube-apiserver, psql, kubectl, node CLIs) and wait on conditions, not
    // clocks; this bounds a test that hangs. At load 15–25 on 2 cores, tests without a timeout of their own
    // took up to 18.5 s (recorder-resilience, cli-ssh-kube), past half of the 30 s this was: 60 s leaves a
    // loaded host its tail. A test that needs more says so itself.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // no retries: a test that fails once is a finding (a flaky test hides a race in the product or the test)
    retry: 0,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
