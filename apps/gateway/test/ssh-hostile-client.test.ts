import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import type { Client, ClientChannel } from 'ssh2';
import { connectSsh2, startSshWorld, type SshWorld } from './support/ssh-world.js';

/**
 * What one SSH client can send that the gateway must not fall over on: requests a well-behaved client
 * library never sends, written on the wire by hand. Each ends (or is refused) for that client alone;
 * another client goes on.
 */

// ssh2's own packet writer: the client library refuses to send these requests, so the test writes them itself
const require = createRequire(import.meta.url);
const { sendPacket, writeUInt32BE } = require('ssh2/lib/protocol/utils.js') as {
  sendPacket(proto: unknown, packet: Buffer): void;
  writeUInt32BE(b: Buffer, v: number, at: number): void;
};
const CHANNEL_REQUEST = 98;

interface RawProtocol {
  _packetRW: { write: { allocStart: number; alloc(n: number): Buffer; finalize(b: Buffer): Buffer } };
}

/** A "signal" channel request (RFC 4254 6.9) with any name at all, as ssh2's signal() would write it without its check. */
function sendRawSignal(ch: ClientChannel, name: string): void {
  const raw = ch as unknown as { _client: { _protocol: RawProtocol }; outgoing: { id: number } };
  const proto = raw._client._protocol;
  const len = Buffer.byteLength(name);
  let p = proto._packetRW.write.allocStart;
  const packet = proto._packetRW.write.alloc(1 + 4 + 4 + 6 + 1 + 4 + len);
  packet[p] = CHANNEL_REQUEST;
  writeUInt32BE(packet, raw.outgoing.id, ++p);
  writeUInt32BE(packet, 6, (p += 4));
  packet.utf8Write('signal', (p += 4), 6);
  packet[(p += 6)] = 0; // want_reply false, as OpenSSH sends it
  writeUInt32BE(packet, len, ++p);
  packet.utf8Write(name, (p += 4), len);
  sendPacket(proto, proto._packetRW.write.finalize(packet));
}

let w: SshWorld;

beforeAll(async () => {
  w = await startSshWorld();
}, 60_000);
afterAll(async () => {
  await w?.stop();
});

/** A command started on `c`; `out` is what it printed so far, `ended` how it ended. */
function started(c: Client, command: string): Promise<{ ch: ClientChannel; out: () => string; ended: Promise<{ code: number | null; signal: string | null; out: string }> }> {
  return new Promise((resolve, reject) => c.exec(command, (err, ch) => {
    if (err) return reject(err);
    let out = '';
    let code: number | null = null;
    let signal: string | null = null;
    ch.on('data', (b: Buffer) => (out += b.toString()));
    ch.stderr.on('data', (b: Buffer) => (out += b.toString()));
    ch.on('exit', (n: number | null, sig?: string) => {
      code = n;
      signal = sig ?? null;
    });
    const ended = new Promise<{ code: number | null; signal: string | null; out: string }>((r) => ch.on('close', () => r({ code, signal, out })));
    resolve({ ch, out: () => out, ended });
  }));
}

async function until(pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !pred(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!pred()) throw new Error(`never: ${what}`);
}

describe('ssh: a hostile client', () => {
  // ssh2's Channel.signal() throws on a name outside RFC 4254's 13; the gateway called it in the client's
  // 'signal' request handler: ssh2 caught it in its packet parser and ended the client's whole connection
  // (every channel, no reason said). OpenSSH's sshd refuses a signal it does not know (session_signal_req);
  // so does the gateway now, that request alone.
  it('a signal request with a name the protocol does not have is refused for that request alone: the command runs on, other clients go on', async () => {
    const token = await w.h.credential({ cn: 'box' });
    const c = await connectSsh2(w, token);
    const other = await connectSsh2(w, token);
    try {
      const cmd = await started(c, 'echo ready; read line; echo "got $line"');
      await until(() => cmd.out().includes('ready'), 'the command started');
      for (const name of ['BUS', 'SIGXCPU', 'WINCH', '', 'x'.repeat(300)]) sendRawSignal(cmd.ch, name);
      // a named one is passed on as before (the test sshd, running as root without privilege separation
      // after login, does not deliver signals: OpenSSH's "session signalling requires privilege separation")
      cmd.ch.signal('USR1');
      // the session survived them: the command reads its stdin and ends as it would have
      cmd.ch.end('hello\n');
      expect(await cmd.ended).toEqual({ code: 0, signal: null, out: 'ready\ngot hello\n' });
      // the gateway lives on: the same connection and another one run commands
      expect((await (await started(c, 'echo still-here')).ended).out).toBe('still-here\n');
      expect(await (await started(other, 'echo other-client')).ended).toEqual({ code: 0, signal: null, out: 'other-client\n' });
    } finally {
      c.end();
      other.end();
    }
  });
});
