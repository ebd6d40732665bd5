import { readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initPolicyEngine } from './policy-engine.js';
import { analyzeSql } from './sql-analyzer.js';
import { MAPPED_STATEMENT_NODES, NOT_STATEMENT_NODES, STATEMENT_VERBS, statementKind } from './statement-kinds.js';

beforeAll(async () => {
  await initPolicyEngine();
});

/**
 * The statement node types of the parser this lib runs: the `…Stmt` members of the `Node` union in
 * the @pgsql/types version libpg-query itself depends on (resolved from libpg-query's own folder,
 * so a parser upgrade that brings a new statement fails the test below until it is mapped).
 */
function parserStatementNodes(): string[] {
  const req = createRequire(import.meta.url);
  const libpg = realpathSync(dirname(req.resolve('libpg-query/package.json')));
  const types = join(dirname(createRequire(join(libpg, 'package.json')).resolve('@pgsql/types/package.json')), 'types.d.ts');
  const text = readFileSync(types, 'utf8');
  const union = text.slice(text.indexOf('export type Node ='), text.indexOf('};', text.indexOf('export type Node =')));
  return [...union.matchAll(/^\s*([A-Za-z_]+Stmt):/gm)].map((m) => m[1]!);
}

describe('statement kinds', () => {
  it('maps every statement node type of the parser (or says why it is not a statement)', () => {
    const nodes = parserStatementNodes();
    expect(nodes.length).toBeGreaterThan(100);
    expect(nodes).toEqual(expect.arrayContaining(['ReassignOwnedStmt', 'CreateExtensionStmt', 'LockStmt', 'AlterSystemStmt']));
    const unmapped = nodes.filter((n) => !MAPPED_STATEMENT_NODES.has(n) && !NOT_STATEMENT_NODES.has(n));
    expect(unmapped).toEqual([]);
    // and nothing mapped that the parser does not have (a typo would map nothing)
    expect([...MAPPED_STATEMENT_NODES].filter((n) => !nodes.includes(n))).toEqual([]);
  });

  it('gives every mapped node a kind a rule can name (its first word is a known verb)', () => {
    const bad = [...MAPPED_STATEMENT_NODES]
      .map((n) => [n, statementKind(n, {})] as const)
      .filter(([, kind]) => !STATEMENT_VERBS.has(kind.split(' ')[0]!));
    expect(bad).toEqual([]);
  });

  // [sql, kinds] — the ones the demo's guardrails must see first
  it.each([
    ['REASSIGN OWNED BY app TO attacker', ['REASSIGN OWNED']],
    ['DROP OWNED BY app CASCADE', ['DROP OWNED']],
    ['CREATE EXTENSION IF NOT EXISTS dblink', ['CREATE EXTENSION']],
    ['ALTER EXTENSION dblink UPDATE', ['ALTER EXTENSION']],
    ['LOCK TABLE customers', ['LOCK TABLE IN ACCESS EXCLUSIVE MODE']],
    ['LOCK customers, orders IN SHARE ROW EXCLUSIVE MODE NOWAIT', ['LOCK TABLE IN SHARE ROW EXCLUSIVE MODE']],
    ['LOCK TABLE ONLY customers IN ACCESS SHARE MODE', ['LOCK TABLE IN ACCESS SHARE MODE']],
    ["ALTER SYSTEM SET shared_preload_libraries = 'evil'", ['ALTER SYSTEM']],
    ['ALTER SYSTEM RESET ALL', ['ALTER SYSTEM']],
    ["SECURITY LABEL FOR selinux ON TABLE t IS 'x'", ['SECURITY LABEL']],
    ['IMPORT FOREIGN SCHEMA public FROM SERVER s INTO local', ['IMPORT FOREIGN SCHEMA']],
    ['CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw', ['CREATE SERVER']],
    ['CREATE USER MAPPING FOR PUBLIC SERVER s', ['CREATE USER MAPPING']],
    ["CREATE SUBSCRIPTION sub CONNECTION 'host=x' PUBLICATION p", ['CREATE SUBSCRIPTION']],
    ["LOAD 'plpython3u'", ['LOAD']],
    // Postgres turns CREATE LANGUAGE without HANDLER into CREATE EXTENSION (so does the parser)
    ['CREATE LANGUAGE plperlu', ['CREATE EXTENSION']],
    ['CREATE LANGUAGE plx HANDLER plx_call_handler', ['CREATE LANGUAGE']],
    ['ALTER TABLE t REPLICA IDENTITY FULL', ['ALTER TABLE']],
    ['ALTER TABLE t OWNER TO attacker', ['ALTER TABLE']],
    ['ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC', ['ALTER DEFAULT PRIVILEGES']],
    ['CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()', ['CREATE EVENT TRIGGER']],
    ['CREATE OPERATOR ### (FUNCTION = f, LEFTARG = int, RIGHTARG = int)', ['CREATE OPERATOR']],
    ['CREATE CAST (int AS text) WITH FUNCTION f(int)', ['CREATE CAST']],
    ['CREATE AGGREGATE a(int) (SFUNC = f, STYPE = int)', ['CREATE AGGREGATE']],
    ['CHECKPOINT', ['CHECKPOINT']],
  ])('%s', (sql, kinds) => {
    const a = analyzeSql(sql);
    expect(a.parseError).toBeNull();
    expect(a.units.map((u) => u.kind)).toEqual(kinds);
  });
});
