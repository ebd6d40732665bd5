// `prisma generate` wants a native schema engine it would download from a host that is
// not reachable here; generation itself does not use it, so point the CLI at a dummy file.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY) {
  const dummy = join(mkdtempSync(join(tmpdir(), 'prisma-')), 'schema-engine');
  writeFileSync(dummy, '');
  env.PRISMA_SCHEMA_ENGINE_BINARY = dummy;
}
env.PRISMA_HIDE_UPDATE_MESSAGE = '1';
execFileSync('pnpm', ['exec', 'prisma', 'generate'], { stdio: 'inherit', env });
