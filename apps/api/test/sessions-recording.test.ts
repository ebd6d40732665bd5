import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WireEvent } from '@portcullis/protocol';
import { startTestApi, type TestApi } from './support.js';
import { RecordingFixture } from '../../../test/support/recorder-fixture.js';

const run = promisify(execFile);
/** `asciinema cat` wants a terminal: run it in a pty (script), without the pty's LF → CR LF translation. */
const asciinemaCat = (file: string) =>
  run('script', ['-qec', `stty -onlcr; asciinema cat '${file}'`, '/dev/null'], { env: { ...process.env, LANG: 'C.UTF-8' } });

/**
 * GET /v1/sessions/{id}/recording.cast: `terminal` events published on NATS as a gateway does, chained
 * by the real recorder, served as asciicast v2 and read back by the real asciinema (`asciinema cat`).
 */
describe('terminal recordings as asciicast v2', () => {
  let api: TestApi;
  let rec: RecordingFixture;
  let auditor: string;
  let other: string;
  let sid: string;
  let plain: string;
  const dir = mkdtempSync(join(tmpdir(), 'cast-'));
  // what the client saw: colours, UTF-8 split over events, a line ending in CR LF, a resize
  const shellOut = ['$ ', 'l', 's\r\n', '\u001b[1;34mdir\u001b[0m  file.txt  caf', 'é ☃\r\n', '$ ', 'exit\r\n'];
  const execOut = ['total 0\r\n', 'drwxr-xr-x 2 root root 40 .\r\n'];

  beforeAll(async () => {
    api = await startTestApi();
    rec = await new RecordingFixture(api).start();
    auditor = await rec.tokenWithRoles(['auditor']);
    other = await rec.tokenWithRoles(['user']);
    sid = rec.newSession();
    plain = rec.newSession();
    const steps: Array<[WireEvent['type'], Record<string, unknown>]> = [
      ['session.start', { clientAddr: '10.1.2.3:50000', user: 'carol', protocol: 'ssh' }],
      ['terminal', { stream: 'shell-1', event: 'start', t: 0, width: 100, height: 30, command: 'bash -l' }],
      ['terminal', { stream: 'shell-1', event: 'o', t: 0.05, data: shellOut[0] }],
      ['terminal', { stream: 'shell-1', event: 'i', t: 0.5, data: 'l' }],
      ['terminal', { stream: 'shell-1', event: 'o', t: 0.51, data: shellOut[1] }],
      ['terminal', { stream: 'exec-2', event: 'start', t: 0, command: 'ls -la' }],
      ['terminal', { stream: 'shell-1', event: 'o', t: 0.9, data: shellOut[2] }],
      ['terminal', { stream: 'exec-2', event: 'o', t: 0.01, data: execOut[0] }],
      ['command', { command: 'ls', action: 'allow', rule: 'default' }],
      ['terminal', { stream: 'shell-1', event: 'r', t: 1.25, data: '120x40' }],
      ['terminal', { stream: 'exec-2', event: 'o', t: 0.02, data: execOut[1] }],
      ['terminal', { stream: 'exec-2', event: 'end', t: 0.03 }],
      ['terminal', { stream: 'shell-1', event: 'o', t: 1.3, data: shellOut[3] }],
      ['terminal', { stream: 'shell-1', event: 'o', t: 1.3, data: shellOut[4] }],
      ['terminal', { stream: 'shell-1', event: 'o', t: 2, data: shellOut[5] }],
      ['terminal', { stream: 'shell-1', event: 'o', t: 2.75, data: shellOut[6] }],
      ['terminal', { stream: 'shell-1', event: 'end', t: 2.8 }],
      ['session.end', { reason: 'client' }],
    ];
    const events = steps.map(([type, data], i) => rec.event(sid, i + 1, type, data));
    const plainEvents = rec.richSession(plain);
    await rec.publish([...events, ...plainEvents]);
    await rec.waitStored([sid, plain], events.length + plainEvents.length);
  });

  afterAll(async () => {
    await rec?.close();
    await api?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the first terminal as asciicast v2 that asciinema reads back as what the client saw', async () => {
    const r = await api.http.get(`/v1/sessions/${sid}/recording.cast`).set('Authorization', auditor).expect(200);
    expect(r.headers['content-type']).toMatch(/application\/x-asciicast/);
    expect(r.headers['x-terminal-streams']).toBe('shell-1,exec-2');
    const lines = r.text.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ version: 2, width: 100, height: 30, command: 'bash -l' });
    expect(typeof lines[0].timestamp).toBe('number');
    expect(lines.slice(1)).toEqual([
      [0.05, 'o', '$ '], [0.5, 'i', 'l'], [0.51, 'o', 'l'], [0.9, 'o', 's\r\n'], [1.25, 'r', '120x40'],
      [1.3, 'o', shellOut[3]], [1.3, 'o', shellOut[4]], [2, 'o', '$ '], [2.75, 'o', 'exit\r\n'],
    ]);
    const file = join(dir, 'shell.cast');
    writeFileSync(file, r.text);
    const { stdout } = await asciinemaCat(file);
    expect(stdout).toBe(shellOut.join(''));
  });

  it('?stream= picks another terminal of the session', async () => {
    const r = await api.http.get(`/v1/sessions/${sid}/recording.cast`).query({ stream: 'exec-2' }).set('Authorization', auditor).expect(200);
    const header = JSON.parse(r.text.split('\n')[0]!);
    expect(header).toMatchObject({ version: 2, width: 80, height: 24, command: 'ls -la' });
    const file = join(dir, 'exec.cast');
    writeFileSync(file, r.text);
    const { stdout } = await asciinemaCat(file);
    expect(stdout).toBe(execOut.join(''));
  });

  it('404 with a clear error: a session without a terminal, an unknown stream, someone else\'s session', async () => {
    const none = await api.http.get(`/v1/sessions/${plain}/recording.cast`).set('Authorization', auditor).expect(404);
    expect(none.body.error).toMatchObject({ code: 'no_terminal_recording', message: expect.stringContaining('has no terminal recording') });
    const unknown = await api.http.get(`/v1/sessions/${sid}/recording.cast`).query({ stream: 'nope' }).set('Authorization', auditor).expect(404);
    expect(unknown.body.error.message).toContain('shell-1, exec-2');
    await api.http.get(`/v1/sessions/${sid}/recording.cast`).set('Authorization', other).expect(404);
    await api.http.get(`/v1/sessions/${sid}/recording.cast`).query({ bogus: '1' }).set('Authorization', auditor).expect(400);
  });

  it('the terminal events are in the session\'s verified hash chain', async () => {
    const v = await api.http.get(`/v1/sessions/${sid}/verify`).set('Authorization', auditor).expect(200);
    expect(v.body).toMatchObject({ valid: true, events: 18, brokenAt: null });
  });
});
