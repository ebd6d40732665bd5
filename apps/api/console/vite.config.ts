import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The web console's production build: static files the api serves at /console (no dev server in
// production). `pnpm build` runs it; the output goes to apps/api/console/dist.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // no inline assets: the CSP allows files of this origin only
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
});
