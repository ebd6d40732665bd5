import { describe, expect, it } from 'vitest';
import {
  encodeCancelRequest, encodeGSSENCRequest, encodePassword, encodeQuery, encodeSSLRequest, encodeStartupMessage, encodeTerminate,
} from '@portcullis/protocol';
import type { AccessRefusalReason } from '../core/session-core.types.js';
import { StartupMachine, StartupStep, type StartupAction, type StartupOptions } from './startup-machine.js';

/** One input to the machine: client bytes, or what the TLS layer, the core or the target answered. */
type Input =
  | Buffer
  | { tls: true }
  | { verified: readonly string[] | undefined }
  | { refused: AccessRefusalReason; message: string }
  | { upstreamReady: Record<string, string> }
  | { upstreamFailed: { sqlState?: string | null; serverMessage?: string | null } };

interface Row {
  name: string;
  opts?: Partial<StartupOptions>;
  inputs: Input[];
  /** every action, in order */
  expected: unknown[];
  state: StartupStep;
}

const OK_PARAMS = { standard_conforming_strings: 'on', client_encoding: 'UTF8', server_version: '15.0' };
const startup = (params: Record<string, string> = { user: 'carol', database: 'db' }): Buffer => encodeStartupMessage(params);
const raw = (...ints: number[]): Buffer => {
  const b = Buffer.alloc(ints.length * 4);
  ints.forEach((v, i) => b.writeInt32BE(v, i * 4));
  return b;
};
const ask = { kind: 'ask-password' };
const verify = (token = 'tok', connection = 'db', user: string | null = 'carol') => ({ kind: 'verify', token, connection, user });
const refuse = (code: string, message: RegExp | string, reason: string, protocolError = false) => ({
  kind: 'refuse', code, reason, message: typeof message === 'string' ? message : expect.stringMatching(message), ...(protocolError ? { protocolError: true } : {}),
});
const connect = (extra: Record<string, string> = {}) => ({ kind: 'connect', settings: { standard_conforming_strings: 'on', client_encoding: 'UTF8', ...extra } });
const toPassword = [startup(), encodePassword('tok')];

const rows: Row[] = [
  // the tricky ones first
  { name: 'bytes injected after SSLRequest, in the same packet (CVE-2021-23214)', inputs: [Buffer.concat([encodeSSLRequest(), startup()])], expected: [refuse('08P01', /unexpected data after SSLRequest/, 'protocol_error', true)], state: StartupStep.Done },
  { name: 'bytes arriving before the TLS handshake', inputs: [encodeSSLRequest(), startup()], expected: [{ kind: 'answer', byte: 'S' }, { kind: 'upgrade-tls' }, refuse('08P01', /unexpected data after SSLRequest/, 'protocol_error', true)], state: StartupStep.Done },
  { name: 'SSLRequest inside TLS', inputs: [encodeSSLRequest(), { tls: true }, encodeSSLRequest()], expected: [{ kind: 'answer', byte: 'S' }, { kind: 'upgrade-tls' }, refuse('08P01', /SSLRequest inside TLS/, 'protocol_error', true)], state: StartupStep.Done },
  { name: 'a Terminate before any startup packet: an impossible length, closed without a word', inputs: [encodeTerminate()], expected: [{ kind: 'close', reason: expect.stringMatching(/length/) }], state: StartupStep.Done },
  { name: 'a startup length below its header: closed', inputs: [raw(4, 196608)], expected: [{ kind: 'close', reason: expect.stringMatching(/length 4/) }], state: StartupStep.Done },
  { name: 'a startup length above 10000: closed', inputs: [raw(10_001, 196608)], expected: [{ kind: 'close', reason: expect.stringMatching(/length 10001/) }], state: StartupStep.Done },
  { name: 'an SSLRequest of the wrong length', inputs: [raw(12, 80877103, 0)], expected: [refuse('08P01', /SSLRequest has length 12/, 'protocol_error', true)], state: StartupStep.Done },
  { name: 'a CancelRequest of the wrong length', inputs: [raw(12, 80877102, 7)], expected: [refuse('08P01', /CancelRequest has length 12/, 'protocol_error', true)], state: StartupStep.Done },
  { name: 'a StartupMessage too short for its terminator', inputs: [raw(8, 196608)], expected: [refuse('08P01', /too short/, 'protocol_error', true)], state: StartupStep.Done },
  { name: 'a StartupMessage without its terminator', inputs: [Buffer.concat([raw(13, 196608), Buffer.from('user\0')])], expected: [refuse('08P01', /invalid startup packet/, 'protocol_error', true)], state: StartupStep.Done },
  { name: 'protocol version 2.0', inputs: [raw(9, 0x00020000, 0)], expected: [refuse('0A000', /unsupported frontend protocol 2\.0/, 'protocol_error', true)], state: StartupStep.Done },
  { name: 'protocol version 4.0', inputs: [raw(9, 0x00040000, 0)], expected: [refuse('0A000', /unsupported frontend protocol 4\.0/, 'protocol_error', true)], state: StartupStep.Done },
  { name: 'not a password message after the password request', inputs: [startup(), encodeQuery('select 1')], expected: [ask, refuse('08P01', /expected a password message/, 'protocol_error', true)], state: StartupStep.Done },
  { name: 'a password message of impossible length', inputs: [startup(), Buffer.from([0x70, 0x7f, 0xff, 0xff, 0xff])], expected: [ask, refuse('08P01', /invalid startup packet/, 'protocol_error', true)], state: StartupStep.Done },

  // TLS
  { name: 'SSL yes: S, the handshake, then startup inside TLS', opts: { allowPlaintext: false }, inputs: [encodeSSLRequest(), { tls: true }, ...toPassword], expected: [{ kind: 'answer', byte: 'S' }, { kind: 'upgrade-tls' }, ask, verify()], state: StartupStep.Verifying },
  { name: 'SSL no: the gateway has no certificate, N, plaintext startup', opts: { tls: false }, inputs: [encodeSSLRequest(), ...toPassword], expected: [{ kind: 'answer', byte: 'N' }, ask, verify()], state: StartupStep.Verifying },
  { name: 'SSL required: a plaintext startup is refused before the password', opts: { allowPlaintext: false }, inputs: [startup()], expected: [refuse('28000', /requires TLS/, 'tls_required')], state: StartupStep.Done },
  { name: 'SSL refused by the gateway (none) while it requires TLS', opts: { tls: false, allowPlaintext: false }, inputs: [encodeSSLRequest(), startup()], expected: [{ kind: 'answer', byte: 'N' }, refuse('28000', /requires TLS/, 'tls_required')], state: StartupStep.Done },
  { name: 'plaintext when allowed', inputs: toPassword, expected: [ask, verify()], state: StartupStep.Verifying },
  { name: 'GSSENC refused with N, then startup', inputs: [encodeGSSENCRequest(), ...toPassword], expected: [{ kind: 'answer', byte: 'N' }, ask, verify()], state: StartupStep.Verifying },
  { name: 'GSSENC refused, then SSL (libpq gssencmode=prefer)', inputs: [encodeGSSENCRequest(), encodeSSLRequest()], expected: [{ kind: 'answer', byte: 'N' }, { kind: 'answer', byte: 'S' }, { kind: 'upgrade-tls' }], state: StartupStep.Tls },

  // cancel
  { name: 'CancelRequest: handed on, nothing answered', inputs: [encodeCancelRequest(4242, 0x01020304)], expected: [{ kind: 'cancel', pid: 4242, secret: Buffer.from([1, 2, 3, 4]) }], state: StartupStep.Done },
  { name: 'CancelRequest inside TLS', inputs: [encodeSSLRequest(), { tls: true }, encodeCancelRequest(7, 9)], expected: [{ kind: 'answer', byte: 'S' }, { kind: 'upgrade-tls' }, { kind: 'cancel', pid: 7, secret: Buffer.from([0, 0, 0, 9]) }], state: StartupStep.Done },

  // startup message
  { name: 'no config yet: refused before the password', opts: { configured: () => false }, inputs: [startup()], expected: [refuse('57P03', /not received its configuration/, 'no_config')], state: StartupStep.Done },
  { name: 'replication connections', inputs: [startup({ user: 'u', database: 'db', replication: 'database' })], expected: [refuse('28000', /replication/, 'replication')], state: StartupStep.Done },
  { name: 'replication=false is an ordinary session', inputs: [startup({ user: 'u', database: 'db', replication: 'false' }), encodePassword('t')], expected: [ask, verify('t', 'db', 'u')], state: StartupStep.Verifying },
  { name: 'a client encoding that can hide quotes', inputs: [startup({ user: 'u', database: 'db', client_encoding: 'SJIS' })], expected: [refuse('22023', /SJIS/i, 'client_encoding')], state: StartupStep.Done },
  { name: 'standard_conforming_strings=off asked for', inputs: [startup({ user: 'u', database: 'db', standard_conforming_strings: 'off' })], expected: [refuse('22023', /standard_conforming_strings/, 'standard_conforming_strings')], state: StartupStep.Done },
  { name: 'the database defaults to the user name', inputs: [startup({ user: 'db2' }), encodePassword('t')], expected: [ask, verify('t', 'db2', 'db2')], state: StartupStep.Verifying },
  { name: 'a startup message and password fed one byte at a time', inputs: [...Buffer.concat(toPassword)].map((b) => Buffer.from([b])), expected: [ask, verify()], state: StartupStep.Verifying },

  // the core's answer
  { name: 'bad password', inputs: [...toPassword, { refused: 'auth_invalid', message: 'invalid gateway credential' }], expected: [ask, verify(), refuse('28P01', 'password authentication failed: invalid gateway credential', 'auth_invalid')], state: StartupStep.Done },
  { name: 'expired credential', inputs: [...toPassword, { refused: 'auth_expired', message: 'gateway credential has expired' }], expected: [ask, verify(), refuse('28P01', /has expired/, 'auth_expired')], state: StartupStep.Done },
  { name: 'revoked credential', inputs: [...toPassword, { refused: 'auth_revoked', message: 'gateway credential has been revoked' }], expected: [ask, verify(), refuse('28P01', /revoked/, 'auth_revoked')], state: StartupStep.Done },
  { name: 'a credential for another connection', inputs: [...toPassword, { refused: 'auth_wrong_connection', message: 'gateway credential is for another connection' }], expected: [ask, verify(), refuse('28P01', /another connection/, 'auth_wrong_connection')], state: StartupStep.Done },
  { name: 'not allowed', inputs: [...toPassword, { refused: 'auth_not_allowed', message: 'not allowed to use connection "db"' }], expected: [ask, verify(), refuse('28P01', /not allowed/, 'auth_not_allowed')], state: StartupStep.Done },
  { name: 'unknown database (connection)', inputs: [...toPassword, { refused: 'unknown_connection', message: 'connection "db" does not exist' }], expected: [ask, verify(), refuse('3D000', 'connection "db" does not exist', 'unknown_connection')], state: StartupStep.Done },
  { name: 'a connection of another protocol', inputs: [...toPassword, { refused: 'wrong_protocol', message: 'connection "db" is a ssh connection, not postgres' }], expected: [ask, verify(), refuse('28000', /ssh connection/, 'wrong_protocol')], state: StartupStep.Done },
  { name: 'its policy is not available', inputs: [...toPassword, { refused: 'policy_unavailable', message: 'the policy of connection "db" is not available' }], expected: [ask, verify(), refuse('55000', /not available/, 'policy_unavailable')], state: StartupStep.Done },
  { name: 'the config went away meanwhile', inputs: [...toPassword, { refused: 'no_config', message: 'the gateway has no configuration' }], expected: [ask, verify(), refuse('57P03', /no configuration/, 'no_config')], state: StartupStep.Done },

  // startup settings
  { name: 'admitted: the client settings go upstream with the lexing ones pinned', inputs: [startup({ user: 'u', database: 'db', application_name: 'app', options: '-c search_path=s1' }), encodePassword('t'), { verified: undefined }], expected: [ask, verify('t', 'db', 'u'), connect({ application_name: 'app', search_path: 's1' })], state: StartupStep.Connecting },
  { name: 'a client_encoding the client asked for is kept', inputs: [startup({ user: 'u', database: 'db', client_encoding: 'LATIN1' }), encodePassword('t'), { verified: undefined }], expected: [ask, verify('t', 'db', 'u'), connect({ client_encoding: 'LATIN1' })], state: StartupStep.Connecting },
  { name: 'role refused by default', inputs: [startup({ user: 'u', database: 'db', options: '-c role=admin' }), encodePassword('t'), { verified: undefined }], expected: [ask, verify('t', 'db', 'u'), refuse('42501', /role is refused/, 'setting_refused')], state: StartupStep.Done },
  { name: 'session_authorization refused by default', inputs: [startup({ user: 'u', database: 'db', session_authorization: 'postgres' }), encodePassword('t'), { verified: undefined }], expected: [ask, verify('t', 'db', 'u'), refuse('42501', /session_authorization is refused/, 'setting_refused')], state: StartupStep.Done },
  { name: "a setting the policy's refusedSettings names", inputs: [startup({ user: 'u', database: 'db', options: '-c search_path=x' }), encodePassword('t'), { verified: ['search_path'] }], expected: [ask, verify('t', 'db', 'u'), refuse('42501', /search_path is refused/, 'setting_refused')], state: StartupStep.Done },
  { name: 'role allowed when the policy refuses nothing', inputs: [startup({ user: 'u', database: 'db', options: '-c role=r' }), encodePassword('t'), { verified: [] }], expected: [ask, verify('t', 'db', 'u'), connect({ role: 'r' })], state: StartupStep.Connecting },
  { name: 'options that do not parse', inputs: [startup({ user: 'u', database: 'db', options: '-c' }), encodePassword('t'), { verified: undefined }], expected: [ask, verify('t', 'db', 'u'), refuse('22023', /./, 'setting_refused')], state: StartupStep.Done },

  // the target's answer
  { name: 'the target accepts: greet', inputs: [...toPassword, { verified: undefined }, { upstreamReady: OK_PARAMS }], expected: [ask, verify(), connect(), { kind: 'greet' }], state: StartupStep.Done },
  { name: 'the target does not report standard_conforming_strings', inputs: [...toPassword, { verified: undefined }, { upstreamReady: { client_encoding: 'UTF8' } }], expected: [ask, verify(), connect(), refuse('0A000', /did not report standard_conforming_strings/, 'lexing_state')], state: StartupStep.Done },
  { name: 'the target reports a client encoding the parser cannot read', inputs: [...toPassword, { verified: undefined }, { upstreamReady: { ...OK_PARAMS, client_encoding: 'SJIS' } }], expected: [ask, verify(), connect(), refuse('0A000', /SJIS/i, 'lexing_state')], state: StartupStep.Done },
  { name: 'the target refuses a setting: its message is passed on', inputs: [...toPassword, { verified: undefined }, { upstreamFailed: { sqlState: '42704', serverMessage: 'unrecognized configuration parameter "nope"' } }], expected: [ask, verify(), connect(), refuse('42704', 'the target refused a setting of this session: unrecognized configuration parameter "nope"', 'setting_refused')], state: StartupStep.Done },
  { name: 'the target has too many connections', inputs: [...toPassword, { verified: undefined }, { upstreamFailed: { sqlState: '53300', serverMessage: 'sorry, too many clients already' } }], expected: [ask, verify(), connect(), refuse('53300', 'could not connect to the target of connection "db"', 'upstream_failed')], state: StartupStep.Done },
  { name: 'the target is unreachable: its address is not told', inputs: [...toPassword, { verified: undefined }, { upstreamFailed: {} }], expected: [ask, verify(), connect(), refuse('08001', 'could not connect to the target of connection "db"', 'upstream_failed')], state: StartupStep.Done },
  { name: 'the target fails authentication: the client never learns the target user', inputs: [...toPassword, { verified: undefined }, { upstreamFailed: { sqlState: '28P01', serverMessage: 'password authentication failed for user "owner"' } }], expected: [ask, verify(), connect(), refuse('08001', 'could not connect to the target of connection "db"', 'upstream_failed')], state: StartupStep.Done },
  { name: 'recording unavailable on a connection that requires it', inputs: [...toPassword, { verified: undefined }, { refused: 'recording_unavailable', message: 'session recording is unavailable' }], expected: [ask, verify(), connect(), refuse('57P03', /recording is unavailable/, 'recording_unavailable')], state: StartupStep.Done },
];

function drive(row: Row): { actions: StartupAction[]; machine: StartupMachine } {
  const m = new StartupMachine({ tls: true, allowPlaintext: true, configured: () => true, ...row.opts });
  const actions: StartupAction[] = [];
  for (const input of row.inputs) {
    if (Buffer.isBuffer(input)) actions.push(...m.received(input));
    else if ('tls' in input) actions.push(...m.tlsReady());
    else if ('verified' in input) actions.push(...m.verified(input.verified));
    else if ('refused' in input) actions.push(...m.refused(input.refused, input.message));
    else if ('upstreamReady' in input) actions.push(...m.upstreamReady(new Map(Object.entries(input.upstreamReady))));
    else actions.push(...m.upstreamFailed('db', input.upstreamFailed));
  }
  return { actions, machine: m };
}

describe('StartupMachine (no sockets)', () => {
  it.each(rows)('$name', (row) => {
    const { actions, machine } = drive(row);
    expect(actions).toEqual(row.expected);
    expect(machine.state).toBe(row.state);
  });

  it('after the greeting, what the client pipelined stays in the framer for the relay', () => {
    const m = new StartupMachine({ tls: false, allowPlaintext: true, configured: () => true });
    expect(m.received(Buffer.concat([startup(), encodePassword('t'), encodeQuery('select 1')]))).toEqual([ask, verify('t', 'db', 'carol')]);
    expect(m.framer.next()?.type).toBe(0x51);
  });

  it('inputs out of turn are ignored, never acted on', () => {
    const m = new StartupMachine({ tls: true, allowPlaintext: true, configured: () => true });
    expect(m.verified()).toEqual([]);
    expect(m.upstreamReady(new Map(Object.entries(OK_PARAMS)))).toEqual([]);
    expect(m.tlsReady()).toEqual([]);
    expect(m.received(startup())).toEqual([ask]);
    expect(m.upstreamReady(new Map(Object.entries(OK_PARAMS)))).toEqual([]);
    expect(m.state).toBe(StartupStep.Password);
    // after a refusal nothing more happens
    expect(m.refused('auth_invalid', 'x')).toHaveLength(1);
    expect(m.received(encodePassword('t'))).toEqual([]);
    expect(m.refused('auth_invalid', 'x')).toEqual([]);
  });
});
