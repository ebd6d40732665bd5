import { describe, expect, it } from 'vitest';
import { DEFAULT_REFUSED_SETTINGS, parseOptions, splitOptions, startupSettings } from './startup-settings.js';

describe('splitOptions (pg_split_opts)', () => {
  it.each([
    ['-c a=1 -c b=2', ['-c', 'a=1', '-c', 'b=2']],
    ['  -c   a=1\t--b=2  ', ['-c', 'a=1', '--b=2']],
    ['-c search_path=my\\ schema', ['-c', 'search_path=my schema']],
    ['-c x=a\\\\b', ['-c', 'x=a\\b']],
    ['', []],
  ])('%j', (options, args) => {
    expect(splitOptions(options)).toEqual(args);
  });
});

describe('parseOptions', () => {
  it.each([
    ['-c statement_timeout=150 -c search_path=a,b', [{ name: 'statement_timeout', value: '150' }, { name: 'search_path', value: 'a,b' }]],
    ['-cwork_mem=8MB', [{ name: 'work_mem', value: '8MB' }]],
    ['--lock-timeout=3s', [{ name: 'lock_timeout', value: '3s' }]],
    ['-c DateStyle=ISO,\\ DMY', [{ name: 'datestyle', value: 'ISO, DMY' }]],
    ['-c application_name=', [{ name: 'application_name', value: '' }]],
  ])('%j', (options, settings) => {
    expect(parseOptions(options)).toEqual(settings);
  });

  it.each(['-B 100', '-c', '-c =1', '-c noequals', 'stray'])('%j is refused, not dropped', (options) => {
    expect(parseOptions(options)).toEqual({ error: expect.any(String) });
  });
});

describe('startupSettings', () => {
  it('forwards every setting of the packet and of options (options first); user, database, options, replication and _pq_ are not settings', () => {
    expect(startupSettings({ user: 'u', database: 'd', options: '-c a=1', statement_timeout: '5s', _pq_x: 'y', '_pq_.ext': 'z', replication: 'false', Search_Path: 'p' }, DEFAULT_REFUSED_SETTINGS))
      .toEqual({ kind: 'settings', settings: [{ name: 'a', value: '1' }, { name: 'statement_timeout', value: '5s' }, { name: '_pq_x', value: 'y' }, { name: 'search_path', value: 'p' }] });
  });

  it.each([
    [{ options: '-c role=postgres' }, DEFAULT_REFUSED_SETTINGS, '42501', /setting role is refused/],
    [{ options: '--session-authorization=postgres' }, DEFAULT_REFUSED_SETTINGS, '42501', /setting session_authorization is refused/],
    [{ ROLE: 'postgres' }, DEFAULT_REFUSED_SETTINGS, '42501', /setting role is refused/],
    [{ options: '-c work_mem=1GB' }, ['Work_Mem'], '42501', /setting work_mem is refused/],
    [{ options: '-c standard_conforming_strings=off' }, [], '22023', /standard_conforming_strings = off is not allowed/],
    [{ options: '-c client_encoding=SJIS' }, [], '22023', /client_encoding SJIS is not allowed/],
    [{ options: '-D /tmp' }, [], '22023', /only -c name=value/],
  ])('%j refused by %j → %s', (params, refused, code, message) => {
    const r = startupSettings(params as Record<string, string>, refused);
    expect(r).toEqual({ kind: 'refused', code, message: expect.stringMatching(message) });
  });

  it('a policy that refuses nothing lets role through', () => {
    expect(startupSettings({ options: '-c role=x' }, [])).toEqual({ kind: 'settings', settings: [{ name: 'role', value: 'x' }] });
  });
});
