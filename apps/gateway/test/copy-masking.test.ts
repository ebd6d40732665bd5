import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_ADMIN_URL, startHarness, type Harness } from './support/harness.js';
import { killAllPrograms, runProgram } from './support/run-program.js';

/**
 * `COPY … TO STDOUT` in CSV and in the text format with options, masked on the way, with psql —
 * the real program — doing `\copy` through the gateway. Expected outputs are written out in full:
 * the columns no rule touches must come out exactly as Postgres wrote them, the masked ones masked.
 * A second connection whose policy masks values without changing them (partial on text with no
 * letters or digits) must give byte for byte what psql gets from Postgres directly.
 */

const policy = {
  name: 'default',
  masking: [
    { name: 'emails', columns: ['email'], strategy: 'partial' },
    { name: 'pii', detectors: ['CREDIT_CARD'], strategy: 'redact' },
    { name: 'salaries', columns: ['salary'], strategy: 'partial' },
    // a token with the CSV delimiter and quote: it must be quoted after masking
    { name: 'secrets', columns: ['secret'], strategy: 'redact', token: 'n/a, "hidden"' },
  ],
};
const identity = { name: 'identity', masking: [{ name: 'symbols', columns: ['sym'], strategy: 'partial' }] };

let h: Harness;
let dir: string;
beforeAll(async () => {
  h = await startHarness({
    connection: { policy: 'default' },
    policies: [{ name: 'default', version: 1, document: policy }, { name: 'identity', version: 1, document: identity }],
    setupSql: `CREATE TABLE customers (id int primary key, name text, email text, card_number text, notes text, secret text, salary numeric);
      INSERT INTO customers VALUES
        (1, 'Ada, "the Countess"', 'ada@example.com', '4111 1111 1111 1111', E'line one\\nline two, card 4111111111111111', 's3cr3t', 123456),
        (2, 'Bob|Robert', 'bob@example.org', 'none', 'card|4111111111111111', NULL, 7),
        (3, '', NULL, '', E'tab\\there \\\\ backslash', '', NULL);
      CREATE TABLE accounts (id int, email text, domain text GENERATED ALWAYS AS (split_part(email, '@', 2)) STORED, note text);
      INSERT INTO accounts (id, email, note) VALUES (1, 'ada@example.com', 'vip');
      CREATE TABLE symbols (id int, sym text);
      INSERT INTO symbols VALUES (1, ','), (2, '"'), (3, ''), (4, NULL), (5, E'\\n'), (6, E'\\r\\n'), (7, '\\.'), (8, '\\'),
        (9, '|'), (10, E'\\t'), (11, ' '), (12, ';'), (13, ''''), (14, '€ ✓'), (15, '-'), (16, E', "\\n'), (17, '""'), (18, E'\\\\.');`,
  });
  const target = h.snapshotInput.connections[0]!;
  await h.putSnapshot({ connections: [target, { ...target, name: 'identity', policy: 'identity' }] });
  dir = mkdtempSync(join(tmpdir(), 'copy-masking-'));
});
afterAll(async () => {
  killAllPrograms();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await h?.stop();
});

/** psql through the gateway (no ~/.psqlrc, errors stop it). */
async function viaGateway(command: string, connection = 'target') {
  const token = await h.credential({ cn: connection });
  return runProgram('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-d', h.connectionUri(token, connection), '-c', command]);
}

/** psql straight to Postgres, as the reference. */
function direct(command: string) {
  const url = PG_ADMIN_URL.replace(/\/[^/?]*(\?|$)/, `/${h.dbName}$1`);
  return runProgram('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', command]);
}

async function maskedSoFar(): Promise<number> {
  return (await h.gateway.metrics.maskedValues.get()).values.reduce((n, v) => n + v.value, 0);
}

describe('psql \\copy … TO through the gateway: CSV and text with options are masked', () => {
  it("\\copy customers TO '<file>' WITH (FORMAT csv, HEADER)", async () => {
    const plain = join(dir, 'direct.csv');
    const masked = join(dir, 'masked.csv');
    const d = await direct(`\\copy customers TO '${plain}' WITH (FORMAT csv, HEADER)`);
    expect(d.code, d.stderr).toBe(0);
    // what Postgres writes: quoted fields with the delimiter, doubled quotes, a newline inside quotes, "" vs NULL
    expect(readFileSync(plain, 'utf8')).toBe(
      'id,name,email,card_number,notes,secret,salary\n' +
        '1,"Ada, ""the Countess""",ada@example.com,4111 1111 1111 1111,"line one\nline two, card 4111111111111111",s3cr3t,123456\n' +
        '2,Bob|Robert,bob@example.org,none,card|4111111111111111,,7\n' +
        '3,"",,"",tab\there \\ backslash,"",\n',
    );

    const r = await viaGateway(`\\copy customers TO '${masked}' WITH (FORMAT csv, HEADER)`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/COPY 3/);
    expect(readFileSync(masked, 'utf8')).toBe(
      'id,name,email,card_number,notes,secret,salary\n' +
        '1,"Ada, ""the Countess""",a**@example.com,[REDACTED],"line one\nline two, card [REDACTED]","n/a, ""hidden""",**3456\n' +
        '2,Bob|Robert,b**@example.org,none,card|[REDACTED],,*\n' +
        '3,"",,"",tab\there \\ backslash,"n/a, ""hidden""",\n',
    );
  });

  it('\\copy (SELECT …) TO STDOUT CSV', async () => {
    const sql = '\\copy (SELECT id, email, notes FROM customers ORDER BY id) TO STDOUT CSV';
    const d = await direct(sql);
    expect(d.stdout).toBe('1,ada@example.com,"line one\nline two, card 4111111111111111"\n2,bob@example.org,card|4111111111111111\n3,,tab\there \\ backslash\n');
    const r = await viaGateway(sql);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('1,a**@example.com,"line one\nline two, card [REDACTED]"\n2,b**@example.org,card|[REDACTED]\n3,,tab\there \\ backslash\n');
  });

  it("text format with a custom DELIMITER and NULL: \\copy (SELECT …) TO STDOUT WITH (DELIMITER '|', NULL '<null>')", async () => {
    const sql = "\\copy (SELECT id, name, email, notes, secret FROM customers ORDER BY id) TO STDOUT WITH (DELIMITER '|', NULL '<null>')";
    const d = await direct(sql);
    expect(d.stdout).toBe(
      '1|Ada, "the Countess"|ada@example.com|line one\\nline two, card 4111111111111111|s3cr3t\n' +
        '2|Bob\\|Robert|bob@example.org|card\\|4111111111111111|<null>\n' +
        '3||<null>|tab\\there \\\\ backslash|\n',
    );
    const r = await viaGateway(sql);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      '1|Ada, "the Countess"|a**@example.com|line one\\nline two, card [REDACTED]|n/a, "hidden"\n' +
        '2|Bob\\|Robert|b**@example.org|card\\|[REDACTED]|<null>\n' +
        '3||<null>|tab\\there \\\\ backslash|n/a, "hidden"\n',
    );
  });

  it('legacy syntax: TO STDOUT CSV HEADER FORCE QUOTE *', async () => {
    const r = await viaGateway('\\copy (SELECT id, email, salary FROM customers ORDER BY id) TO STDOUT CSV HEADER FORCE QUOTE *');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('id,email,salary\n"1","a**@example.com","**3456"\n"2","b**@example.org","*"\n"3",,\n');
  });

  it('a table with a generated column: COPY leaves it out, and so does the masking plan', async () => {
    expect((await direct('\\copy accounts TO STDOUT')).stdout).toBe('1\tada@example.com\tvip\n');
    for (const [sql, out] of [
      ['\\copy accounts TO STDOUT', '1\ta**@example.com\tvip\n'],
      ['\\copy accounts TO STDOUT WITH (FORMAT csv, HEADER)', 'id,email,note\n1,a**@example.com,vip\n'],
    ]) {
      const r = await viaGateway(sql!);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe(out);
    }
  });

  it.each([
    // a numeric column under partial cannot be masked in binary: the plan itself refuses
    { name: 'binary (a covered numeric column)', sql: '\\copy customers TO STDOUT WITH (FORMAT binary)', reason: /refused by masking policy: column "salary" \(numeric, binary format\)/ },
    { name: 'binary (text columns)', sql: '\\copy (SELECT id, email, notes FROM customers) TO STDOUT BINARY', reason: /binary COPY of masked columns is refused/ },
    { name: "ENCODING 'LATIN1'", sql: "\\copy customers TO STDOUT WITH (FORMAT csv, ENCODING 'LATIN1')", reason: /ENCODING 'LATIN1': the gateway masks UTF-8 output only/ },
    { name: 'text ENCODING SQL_ASCII', sql: "\\copy customers TO STDOUT WITH (ENCODING 'SQL_ASCII')", reason: /ENCODING 'SQL_ASCII'/ },
  ])('$name is refused, nothing of the table leaves', async ({ sql, reason }) => {
    const r = await viaGateway(sql);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(reason);
    expect(r.stdout).not.toContain('ada@example.com');
    expect(r.stdout).not.toContain('4111');
  });
});

describe('masking that changes no value gives what Postgres wrote, byte for byte', () => {
  it.each([
    '\\copy symbols TO STDOUT',
    '\\copy symbols TO STDOUT WITH (FORMAT csv, HEADER)',
    '\\copy symbols TO STDOUT WITH (FORMAT csv, FORCE_QUOTE *)',
    "\\copy symbols TO STDOUT WITH (FORMAT csv, DELIMITER ';', QUOTE '''', ESCAPE '\\', NULL '-')",
    "\\copy symbols TO STDOUT WITH (FORMAT csv, DELIMITER E'\\t')",
    "\\copy symbols TO STDOUT WITH (DELIMITER '|', NULL '', HEADER)",
    "\\copy symbols TO STDOUT DELIMITER ','",
    '\\copy (SELECT sym FROM symbols ORDER BY id) TO STDOUT CSV',
    '\\copy (SELECT sym FROM symbols ORDER BY id) TO STDOUT',
  ])('%s', async (sql) => {
    const d = await direct(sql);
    expect(d.code, d.stderr).toBe(0);
    const before = await maskedSoFar();
    const r = await viaGateway(sql, 'identity');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(d.stdout);
    // each value went through the masker (decoded, masked, written again), not passed as it came
    expect((await maskedSoFar()) - before).toBeGreaterThanOrEqual(15);
  });
});
