import { describe, expect, it } from 'vitest';
import { lexesAlikeUnderAnySettings, reportedLexingProblem, requestedLexingProblem } from './lexing-settings.js';

describe('reportedLexingProblem (what the server says in ParameterStatus)', () => {
  it.each([
    ['standard_conforming_strings', 'off', /standard_conforming_strings = off is not allowed/],
    ['standard_conforming_strings', 'OFF', /not allowed/],
    ['client_encoding', 'SJIS', /client_encoding SJIS is not allowed through the gateway: use UTF8/],
    ['client_encoding', 'BIG5', /not allowed/],
    ['client_encoding', 'GB18030', /not allowed/],
    ['client_encoding', 'JOHAB', /not allowed/],
    ['client_encoding', 'UHC', /not allowed/],
    ['client_encoding', 'GBK', /not allowed/],
    // an allowlist: a name Postgres might add later fails closed
    ['client_encoding', 'SOMETHING_NEW', /not allowed/],
    ['client_encoding', 'utf8', /not allowed/],
  ])('%s = %s is refused', (name, value, why) => {
    expect(reportedLexingProblem(name, value)).toMatch(why);
  });

  it.each([
    ['standard_conforming_strings', 'on'],
    ['client_encoding', 'UTF8'],
    ['client_encoding', 'SQL_ASCII'],
    ['client_encoding', 'LATIN1'],
    ['client_encoding', 'WIN1252'],
    ['client_encoding', 'EUC_JP'],
    ['search_path', 'anything'],
    ['server_encoding', 'SJIS'],
  ])('%s = %s is fine', (name, value) => {
    expect(reportedLexingProblem(name, value)).toBeNull();
  });
});

describe('requestedLexingProblem (what a client asks for)', () => {
  it.each([
    ['standard_conforming_strings', 'off', false],
    ['standard_conforming_strings', 'false', false],
    ['standard_conforming_strings', '0', false],
    ['standard_conforming_strings', 'o', false],
    ['standard_conforming_strings', 'nonsense', false],
    ['STANDARD_CONFORMING_STRINGS', 'off', false],
    ['standard_conforming_strings', 'on', true],
    ['standard_conforming_strings', ' TRUE ', true],
    ['standard_conforming_strings', 'yes', true],
    ['standard_conforming_strings', 't', true],
    ['standard_conforming_strings', '1', true],
    ['client_encoding', 'sjis', false],
    ['client_encoding', 'Shift_JIS', false],
    ['Client_Encoding', 'cp932', false],
    ['client_encoding', 'big-5', false],
    ['client_encoding', 'UTF8', true],
    ['client_encoding', 'latin1', true],
    ['application_name', 'off', true],
  ])('%s = %s → allowed %s', (name, value, ok) => {
    expect(requestedLexingProblem(name, value) === null).toBe(ok);
  });
});

describe('lexesAlikeUnderAnySettings', () => {
  it.each([
    ['SELECT 1', true],
    ["SELECT 'a' || $$b$$ -- done", true],
    ["SELECT 'a\\'; DROP TABLE t; --'", false],
    ["SELECT E'\\n'", false],
    ["SELECT 'héllo'", false],
    ['SELECT "ünïcode"', false],
    ['', true],
  ])('%j → %s', (sql, alike) => {
    expect(lexesAlikeUnderAnySettings(sql)).toBe(alike);
  });
});
