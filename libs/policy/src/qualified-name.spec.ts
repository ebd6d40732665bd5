import { describe, expect, it } from 'vitest';
import { parseQualifiedName, splitQualifiedName } from './qualified-name.js';

// What a policy may write for `tables`, `functions` and masking `columns`, and what it means.
// Postgres: https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS
const rows: { name: string; input: string; parts: string[] }[] = [
  { name: 'a dot inside quotes is part of the name', input: '"a.b".c', parts: ['a.b', 'c'] },
  { name: 'white space inside quotes is part of the name', input: '" My Schema "."x"', parts: [' my schema ', 'x'] },
  { name: 'a doubled quote inside quotes is one quote', input: '"say ""hi"""', parts: ['say "hi"'] },
  { name: 'white space around the dots is not part of a name', input: 'public . users', parts: ['public', 'users'] },
  { name: 'white space around the whole name is not part of it', input: '  \tpublic.users \n', parts: ['public', 'users'] },
  { name: 'white space between a quoted part and the dot', input: '"Public" . "Users"', parts: ['public', 'users'] },
  { name: 'white space inside an unquoted part is kept (it can only name the quoted identifier)', input: 'my table', parts: ['my table'] },
  { name: 'quoted names compare lower-cased, as the analyser reads them', input: '"MySchema"."MyTable"', parts: ['myschema', 'mytable'] },
  { name: 'unquoted names are lower-cased', input: 'Public.Users', parts: ['public', 'users'] },
  { name: 'three parts', input: 'db.public.users.ssn', parts: ['db', 'public', 'users', 'ssn'] },
  { name: 'an unterminated quote runs to the end', input: '"abc.def', parts: ['abc.def'] },
  { name: 'empty parts stay (a name no reference has)', input: 'a..b', parts: ['a', '', 'b'] },
  { name: 'one plain name', input: 'users', parts: ['users'] },
  { name: 'lower-casing is per part, as String#toLowerCase does it', input: 'ΣΟΦΟΣ.x', parts: ['σοφος', 'x'] },
];

describe('splitQualifiedName', () => {
  it.each(rows)('$name: $input', ({ input, parts }) => {
    expect(splitQualifiedName(input)).toEqual(parts);
  });
});

describe('parseQualifiedName', () => {
  it.each([
    { input: 'users', expected: { schema: null, name: 'users' } },
    { input: 'Public . Users', expected: { schema: 'public', name: 'users' } },
    { input: 'db.public.users', expected: { schema: 'public', name: 'users' } },
    { input: '"A B"."C.D"', expected: { schema: 'a b', name: 'c.d' } },
  ])('$input', ({ input, expected }) => {
    expect(parseQualifiedName(input)).toEqual(expected);
  });
});
