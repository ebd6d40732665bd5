/**
 * No app imports another app's files, in code or tests: a rule two apps share lives in libs/, and a
 * harness that starts several apps lives here in test/support/ (the one cross-app place).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const appsDir = join(root, 'apps');
const apps = readdirSync(appsDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
const SKIP = new Set(['node_modules', 'dist', 'build', 'coverage', '.portcullis']);
const SOURCE = /\.(?:[cm]?ts|[cm]?js|tsx)$/;
// static imports and re-exports, side-effect imports, dynamic import() and require() with a literal
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)(['"`])([^'"`\n]+)\1/g;

/** The other apps `source` (a file at `file`, under apps/<owner>/) reaches into, one line per import. */
function crossAppImports(file: string, source: string): string[] {
  const owner = relative(appsDir, file).split(sep)[0];
  const found: string[] = [];
  for (const m of source.matchAll(SPECIFIER)) {
    const spec = m[2];
    let target: string | undefined;
    if (spec.startsWith('.')) {
      const rel = relative(appsDir, resolve(dirname(file), spec));
      if (!rel.startsWith('..')) target = rel.split(sep)[0];
    } else {
      // a workspace package of an app (@portcullis/<app>) is the same reach by another road
      const pkg = /^@portcullis\/([^/]+)/.exec(spec)?.[1];
      if (pkg && apps.includes(pkg)) target = pkg;
    }
    if (target && target !== owner) found.push(`${relative(root, file)} imports ${spec}`);
  }
  return found;
}

function* walk(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (SOURCE.test(e.name) && !e.name.endsWith('.d.ts')) yield p;
  }
}

describe('crossAppImports', () => {
  const at = (app: string, ...p: string[]) => join(appsDir, app, ...p);
  it.each([
    { name: 'another app src from a test', file: at('api', 'test', 'x.test.ts'), src: "import { Recorder } from '../../recorder/src/recorder.js';", bad: 1 },
    { name: 'another app from a nested test support', file: at('gateway', 'test', 'support', 's.ts'), src: "import { startApprovalsApp } from '../../../approvals/src/app.js';", bad: 1 },
    { name: 'another app test support', file: at('gateway', 'test', 'r.test.ts'), src: "import { PrivateRedis } from '../../approvals/test/support/stack.js';", bad: 1 },
    { name: 're-export', file: at('cli', 'src', 'a.ts'), src: "export { x } from '../../api/src/x.js';", bad: 1 },
    { name: 'type-only import', file: at('gateway', 'src', 'a.ts'), src: "import type { T } from '../../api/src/t.js';", bad: 1 },
    { name: 'dynamic import', file: at('gateway', 'src', 'a.ts'), src: "const m = await import('../../recorder/src/m.js');", bad: 1 },
    { name: 'multi-line import', file: at('api', 'src', 'a.ts'), src: "import {\n  a,\n  b,\n} from '../../gateway/src/a.js';", bad: 1 },
    { name: 'an app as a workspace package', file: at('api', 'src', 'a.ts'), src: "import { x } from '@portcullis/recorder';", bad: 1 },
    { name: 'own sources', file: at('api', 'test', 'x.test.ts'), src: "import { TokensService } from '../src/auth/tokens.service.js';", bad: 0 },
    { name: 'own sources from deep inside', file: at('gateway', 'src', 'postgres', 'a.ts'), src: "import { G } from '../gateway.js';", bad: 0 },
    { name: 'the root cross-app test support', file: at('api', 'test', 'x.test.ts'), src: "import { RecordingFixture } from '../../../test/support/recorder-fixture.js';", bad: 0 },
    { name: 'libs', file: at('api', 'src', 'a.ts'), src: "import { natsNames } from '@portcullis/protocol';\nimport { z } from 'zod';", bad: 0 },
  ])('$name', ({ file, src, bad }) => {
    expect(crossAppImports(file, src)).toHaveLength(bad);
  });
});

describe('the tree', () => {
  it('has no file under apps/<x>/ that imports apps/<y>/', () => {
    const files = apps.flatMap((a) => [...walk(join(appsDir, a))]);
    expect(files.length).toBeGreaterThan(50);
    expect(files.flatMap((f) => crossAppImports(f, readFileSync(f, 'utf8')))).toEqual([]);
  });
});
