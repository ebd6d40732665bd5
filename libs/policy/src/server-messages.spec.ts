import { beforeAll, describe, expect, it } from 'vitest';
import { parsePolicyDocument } from './policy-document.js';
import { evaluate, initPolicyEngine } from './policy-engine.js';
import { scrubServerMessage } from './server-messages.js';

/**
 * Error and notice texts of a statement that reads or writes a masked column are withheld; every
 * other one goes through the content detectors. Which statements count is the decision's `masked`.
 */
const doc = parsePolicyDocument({
  name: 'messages',
  guardrails: [],
  masking: [
    { name: 'ssns', columns: ['ssn'], strategy: 'redact' },
    { name: 'cards', columns: ['public.customers.card_number'], strategy: 'partial' },
    { name: 'pii', detectors: ['US_SSN', 'EMAIL'], strategy: 'redact' },
  ],
});
const opts = { hmacKey: Buffer.alloc(32, 1) };

beforeAll(async () => {
  await initPolicyEngine();
});

// [name, sql, masked rule the decision names (null: none)] — tricky rows first
const statements: [string, string, string | null][] = [
  ['a cast in a filter', 'SELECT id FROM customers WHERE ssn::int > 0', 'ssns'],
  ['ALTER COLUMN … TYPE without USING (converts every value)', 'ALTER TABLE customers ALTER COLUMN ssn TYPE int', 'ssns'],
  ['a unique index on it (duplicate keys are quoted)', 'CREATE UNIQUE INDEX ON customers (ssn)', 'ssns'],
  ['INSERT without a column list writes every column', "INSERT INTO customers VALUES (1, 'a')", 'ssns'],
  ['INSERT … SELECT *', 'INSERT INTO customers2 SELECT * FROM other', 'ssns'],
  ['a star of the rule\'s table', 'SELECT * FROM public.customers', 'ssns'],
  ['SQL given as text', "SELECT query_to_xml('select id from customers where ssn::int > 0', true, true, '')", 'ssns'],
  ['a quoted identifier', 'SELECT id FROM customers WHERE "SSN" IS NULL', 'ssns'],
  ['a table-qualified rule\'s column', "SELECT id FROM customers WHERE card_number::int > 0", 'cards'],
  // a write hands whole existing rows to the table's triggers and rules and to "Failing row contains (…)"
  ['an UPDATE of other columns', "UPDATE customers SET name = 'x' WHERE id = 1", 'ssns'],
  ['a DELETE', 'DELETE FROM customers WHERE id = 1', 'ssns'],
  ['INSERT … ON CONFLICT DO UPDATE', "INSERT INTO customers (id, name) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET name = 'b'", 'ssns'],
  ['the column name only in a string literal', "SELECT id FROM customers WHERE name = 'ssn'", null],
  ['no masked column', 'SELECT id, name FROM customers WHERE id::text = $1', null],
  ['INSERT with a column list of other columns', "INSERT INTO customers (id, name) VALUES (1, 'a')", null],
];

describe('which statements have their error texts withheld', () => {
  it.each(statements)('%s', (_name, sql, rule) => {
    expect(evaluate(sql, doc).masked ?? null).toBe(rule);
  });
});

// [name, fields in, rule, fields out (null: unchanged)]
const messages: [string, Record<string, string>, string | null, Record<string, string> | null][] = [
  [
    'a cast error of a statement that names a masked column',
    { S: 'ERROR', V: 'ERROR', C: '22P02', M: 'invalid input syntax for type integer: "910-10-1000"', W: 'SQL function "f"', P: '31', F: 'numutils.c', L: '316', R: 'pg_strtoint32' },
    'ssns',
    { S: 'ERROR', V: 'ERROR', C: '22P02', M: 'error text withheld (SQLSTATE 22P02): the statement reads or writes a column masked by rule "ssns"', P: '31', F: 'numutils.c', L: '316', R: 'pg_strtoint32' },
  ],
  [
    'a unique violation keeps its object names',
    { S: 'ERROR', V: 'ERROR', C: '23505', M: 'duplicate key value violates unique constraint "c_email_key"', D: 'Key (email)=(a@b.co) already exists.', s: 'public', t: 'customers', n: 'c_email_key' },
    'emails',
    { S: 'ERROR', V: 'ERROR', C: '23505', M: 'error text withheld (SQLSTATE 23505): the statement reads or writes a column masked by rule "emails"', s: 'public', t: 'customers', n: 'c_email_key' },
  ],
  [
    'a notice says message, not error',
    { S: 'NOTICE', V: 'NOTICE', C: '00000', M: 'x 123-45-6789', H: 'h', q: 'SELECT 1', p: '3' },
    'ssns',
    { S: 'NOTICE', V: 'NOTICE', C: '00000', M: 'message text withheld (SQLSTATE 00000): the statement reads or writes a column masked by rule "ssns"' },
  ],
  [
    'detectors over every text field of any other message',
    { S: 'NOTICE', V: 'NOTICE', C: '00000', M: 'first: 123-45-6789', D: 'mail ada@example.com', H: 'none', W: 'PL/pgSQL function noisy() line 2 at RAISE' },
    null,
    { S: 'NOTICE', V: 'NOTICE', C: '00000', M: 'first: [REDACTED]', D: 'mail [REDACTED]', H: 'none', W: 'PL/pgSQL function noisy() line 2 at RAISE' },
  ],
  ['nothing found: unchanged', { S: 'ERROR', V: 'ERROR', C: '22012', M: 'division by zero' }, null, null],
];

describe('scrubServerMessage', () => {
  it.each(messages)('%s', (_name, fields, rule, expected) => {
    expect(scrubServerMessage(fields, doc, opts, rule)).toEqual(expected);
  });
});
