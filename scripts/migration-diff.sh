#!/usr/bin/env bash
# Writes the SQL that takes the database from schema OLD to schema NEW, offline.
# Prisma 7's CLI needs a native schema engine that cannot be downloaded here; prisma@6.19.3 with
# its JS engine can still diff two datamodels. Usage:
#   scripts/migration-diff.sh <old.prisma|empty> prisma/schema.prisma > prisma/migrations/<ts>_<name>/migration.sql
# Get the old schema with: git show HEAD:prisma/schema.prisma > /tmp/old.prisma
set -euo pipefail
old=$1 new=$2
side=${PRISMA6_DIR:-/tmp/portcullis-prisma6}
if [ ! -x "$side/node_modules/.bin/prisma" ]; then
  mkdir -p "$side" && (cd "$side" && npm init -y >/dev/null && npm i --silent prisma@6.19.3 @prisma/adapter-pg@6.19.3 >&2)
fi
to6() { # Prisma 6 wants the url in the datasource and an old-style generator
  sed -e 's/"prisma-client"$/"prisma-client-js"/' -e '/moduleFormat\|importFileExtension\|runtime  \|generatedFileExtension\|^  output  /d' \
      -e 's/provider = "postgresql"/provider = "postgresql"\n  url = env("DATABASE_URL")/' "$1"
}
if [ "$old" = empty ]; then printf 'datasource db {\n  provider = "postgresql"\n  url = env("DATABASE_URL")\n}\n' > "$side/old.prisma"; else to6 "$old" > "$side/old.prisma"; fi
to6 "$new" > "$side/new.prisma"
cat > "$side/prisma.config.ts" <<'TS'
import { defineConfig } from 'prisma/config';
import { PrismaPg } from '@prisma/adapter-pg';
export default defineConfig({
  experimental: { adapter: true }, engine: 'js', schema: 'new.prisma',
  adapter: async () => new PrismaPg({ connectionString: 'postgresql://postgres@127.0.0.1:5432/postgres' }),
} as any);
TS
touch "$side/dummy"
cd "$side" && DATABASE_URL=postgresql://x@localhost/x PRISMA_SCHEMA_ENGINE_BINARY=$side/dummy PRISMA_QUERY_ENGINE_LIBRARY=$side/dummy \
  npx prisma migrate diff --from-schema-datamodel old.prisma --to-schema-datamodel new.prisma --script
