import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ScramError } from './errors.js';
import { md5Password, SCRAM_SHA_256, SCRAM_SHA_256_PLUS, saslPrep, ScramClient } from './scram.js';

// RFC 7677 section 3: user "user", password "pencil".
const RFC = {
  nonce: 'rOprNGfwEbeRWgbNEkqO',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

function rfcClient(): ScramClient {
  return new ScramClient('user', 'pencil', { nonce: RFC.nonce });
}

function scramError(fn: () => unknown): ScramError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ScramError);
    return e as ScramError;
  }
  throw new Error('expected a ScramError');
}

describe('ScramClient', () => {
  it('reproduces the RFC 7677 exchange byte for byte', () => {
    const c = rfcClient();
    expect(c.mechanism).toBe(SCRAM_SHA_256);
    expect(c.clientFirstMessage()).toBe(RFC.clientFirst);
    expect(c.handleServerFirst(RFC.serverFirst)).toBe(RFC.clientFinal);
    expect(c.done).toBe(false);
    c.verifyServerFinal(RFC.serverFinal);
    expect(c.done).toBe(true);
  });

  it('makes a fresh random nonce per client', () => {
    const a = new ScramClient('u', 'p').clientFirstMessage();
    const b = new ScramClient('u', 'p').clientFirstMessage();
    expect(a).toMatch(/^n,,n=u,r=[A-Za-z0-9+/]{24}$/);
    expect(a).not.toBe(b);
  });

  it('escapes , and = in the user name (saslname)', () => {
    expect(new ScramClient('a=b,c', 'p', { nonce: 'x' }).clientFirstMessage()).toBe('n,,n=a=3Db=2Cc,r=x');
  });

  it.each([
    { name: 'wrong signature', final: 'v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', code: 'server_signature_mismatch' },
    { name: 'short signature', final: 'v=AAAA', code: 'server_signature_mismatch' },
    { name: 'server error', final: 'e=invalid-proof', code: 'server_error' },
    { name: 'no verifier', final: 'x=1', code: 'bad_server_message' },
    { name: 'not base64', final: 'v=***', code: 'bad_server_message' },
    { name: 'empty', final: '', code: 'bad_server_message' },
  ])('verifyServerFinal refuses $name', ({ final, code }) => {
    const c = rfcClient();
    c.clientFirstMessage();
    c.handleServerFirst(RFC.serverFirst);
    expect(scramError(() => c.verifyServerFinal(final)).code).toBe(code);
    expect(c.done).toBe(false);
  });

  it.each([
    { name: 'a nonce that does not extend ours', first: 'r=someoneElse123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096' },
    { name: 'our nonce unextended', first: `r=${RFC.nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096` },
    { name: 'a mandatory extension', first: `m=ext,r=${RFC.nonce}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096` },
    { name: 'attributes out of order', first: `s=W22ZaJ0SNY7soEsUEjb6gQ==,r=${RFC.nonce}x,i=4096` },
    { name: 'a bad salt', first: `r=${RFC.nonce}x,s=@@@,i=4096` },
    { name: 'zero iterations', first: `r=${RFC.nonce}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0` },
    { name: 'non-numeric iterations', first: `r=${RFC.nonce}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4e3` },
    { name: 'iterations above the cap', first: `r=${RFC.nonce}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999` },
    { name: 'garbage', first: 'hello' },
  ])('handleServerFirst refuses $name', ({ first }) => {
    const c = rfcClient();
    c.clientFirstMessage();
    expect(scramError(() => c.handleServerFirst(first)).code).toBe('bad_server_message');
  });

  it('refuses steps out of order', () => {
    const c = rfcClient();
    expect(scramError(() => c.handleServerFirst(RFC.serverFirst)).code).toBe('bad_state');
    c.clientFirstMessage();
    expect(scramError(() => c.clientFirstMessage()).code).toBe('bad_state');
    expect(scramError(() => c.verifyServerFinal(RFC.serverFinal)).code).toBe('bad_state');
  });

  it('picks SCRAM-SHA-256-PLUS with channel binding when offered, and says "y" when not', () => {
    const data = createHash('sha256').update('certificate').digest();
    const plus = new ScramClient('u', 'p', { nonce: 'n', channelBinding: { type: 'tls-server-end-point', data }, serverMechanisms: [SCRAM_SHA_256_PLUS, SCRAM_SHA_256] });
    expect(plus.mechanism).toBe(SCRAM_SHA_256_PLUS);
    expect(plus.clientFirstMessage()).toBe('p=tls-server-end-point,,n=u,r=n');
    const final = plus.handleServerFirst('r=nX,s=c2FsdA==,i=1');
    const c = Buffer.from(final.split(',')[0].slice(2), 'base64');
    expect(c.equals(Buffer.concat([Buffer.from('p=tls-server-end-point,,'), data]))).toBe(true);

    const noPlus = new ScramClient('u', 'p', { nonce: 'n', channelBinding: { type: 'tls-server-end-point', data }, serverMechanisms: [SCRAM_SHA_256] });
    expect(noPlus.mechanism).toBe(SCRAM_SHA_256);
    expect(noPlus.clientFirstMessage()).toBe('y,,n=u,r=n');
    expect(noPlus.handleServerFirst('r=nX,s=c2FsdA==,i=1').startsWith(`c=${Buffer.from('y,,').toString('base64')},`)).toBe(true);
  });

  it('refuses a server that offers no SCRAM mechanism', () => {
    expect(scramError(() => new ScramClient('u', 'p', { serverMechanisms: ['OAUTHBEARER'] })).code).toBe('bad_server_message');
  });
});

describe('md5Password', () => {
  it('is md5(md5(password + user) + salt), prefixed "md5"', () => {
    const salt = Buffer.from([0x01, 0x02, 0x03, 0x04]);
    const inner = createHash('md5').update('secretalice').digest('hex');
    const expected = 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex');
    expect(md5Password('alice', 'secret', salt)).toBe(expected);
    expect(md5Password('alice', 'secret', salt)).toMatch(/^md5[0-9a-f]{32}$/);
  });
});

describe('saslPrep (as Postgres applies it)', () => {
  it.each([
    { name: 'ASCII passes unchanged, even control chars', input: 'pa ss\tword', expected: 'pa ss\tword' },
    { name: 'non-ASCII space maps to space', input: 'I\u00a0X', expected: 'I X' },
    { name: 'soft hyphen maps to nothing', input: 'I\u00adX', expected: 'IX' },
    { name: 'NFKC: ligature ﬁ', input: 'ﬁnöde', expected: 'finöde' },
    { name: 'NFKC: roman numeral Ⅸ', input: 'Ⅸ', expected: 'IX' },
    { name: 'prohibited control char: raw password used', input: 'ä\u0007', expected: 'ä\u0007' },
    { name: 'private use: raw password used', input: 'ä\ue000', expected: 'ä\ue000' },
    { name: 'mixed RTL and LTR: raw password used', input: '\u05d0a\u05d0', expected: '\u05d0a\u05d0' },
    { name: 'RTL only', input: '\u05d0\u05d1', expected: '\u05d0\u05d1' },
  ])('$name', ({ input, expected }) => {
    expect(saslPrep(input)).toBe(expected);
  });
});
