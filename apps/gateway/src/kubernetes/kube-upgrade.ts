import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import type { SessionCore } from '../core/session-core.types.js';
import type { Logger } from '../logger.js';
import { LineTracker } from '../terminal/line-tracker.js';
import { MaskedOutput } from '../terminal/masked-output.js';
import type { TerminalPolicy, CommandVerdict } from '../terminal/command-policy.types.js';
import { TerminalRecorder } from '../terminal/terminal-recorder.js';
import { holdForApproval } from './kube-approval.js';
import type { KubeCall } from './kube-listener.js';
import { sendStatusOnSocket } from './kube-status.js';
import { endGracefully } from './socket-end.js';
import { CHANNEL, WS_OP, WsFrameReader, channelFrame, type WsFrame } from './ws-frames.js';

const CTRL_U = Buffer.from([0x15]);
/** a pause in a terminal's output after which the masker's held-back text is sent (SSH does the same) */
const IDLE_FLUSH_MS = 50;
/** keystrokes held while a line waits for its decision before the client is paused */
const MAX_HELD_BYTES = 1024 * 1024;

export interface UpgradeOptions {
  call: KubeCall;
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  headers: OutgoingHttpHeaders;
  path: string;
  /** the shell decisions of the session's policy (null: no policy, nothing decided per line) */
  shell: TerminalPolicy | null;
  /** the session core (approvals of held exec lines) */
  core: SessionCore;
  logger: Logger;
}

/** The Kubernetes channel protocols over WebSocket the gateway can read (and so record and decide). */
const CHANNEL_PROTOCOLS = /^(v5|v4)\.channel\.k8s\.io$/;

/**
 * exec / attach / port-forward: the client's upgrade goes to the API server with the connection's
 * credential; after its 101 the bytes flow both ways. exec and attach must speak a channel protocol
 * over WebSocket (kubectl ≥ 1.30's default, `v5.channel.k8s.io`): the gateway reads those frames to
 * record the terminal (`terminal` events: what the client saw and typed) and, for an interactive
 * exec with a policy, decides each line at its Enter as an SSH shell does. SPDY exec/attach (older
 * kubectl) cannot be read here and is refused rather than passed unrecorded. port-forward carries
 * no terminal and is relayed as it comes (its start, end and byte counts are recorded).
 */
export function relayUpgrade(o: UpgradeOptions): void {
  const { call, req, socket } = o;
  const sub = call.info.subresource;
  const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
  const terminal = sub === 'exec' || sub === 'attach';
  if (terminal && upgrade !== 'websocket') {
    sendStatusOnSocket(socket, 400, 'BadRequest', `portcullis: ${sub} through the gateway needs the WebSocket protocol (v5.channel.k8s.io, kubectl ≥ 1.30's default: unset KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false); ${req.headers.upgrade ?? 'this upgrade'} cannot be decided, masked or recorded`);
    call.session.request(call, { status: 400, action: 'error', reason: 'SPDY exec/attach is not supported' });
    return;
  }
  if (terminal) {
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim()).filter((p) => CHANNEL_PROTOCOLS.test(p));
    if (offered.length === 0) {
      sendStatusOnSocket(socket, 400, 'BadRequest', 'portcullis: exec/attach through the gateway needs the v5.channel.k8s.io or v4.channel.k8s.io WebSocket protocol');
      call.session.request(call, { status: 400, action: 'error', reason: 'no channel protocol' });
      return;
    }
    // only protocols the gateway can read reach the API server (no base64 or SPDY-tunnelled variants)
    o.headers['sec-websocket-protocol'] = offered.join(', ');
  }
  const up = httpsRequest({
    protocol: 'https:', hostname: call.upstream.url.hostname, port: call.upstream.url.port || 443,
    method: req.method, path: o.path, agent: call.upstream.upgradeAgent,
    headers: { ...o.headers, connection: 'Upgrade', upgrade: String(req.headers.upgrade ?? '') },
  });
  up.on('error', (err) => {
    o.logger.warn({ err: err.message }, 'kubernetes upgrade to the API server failed');
    if (socket.writable) sendStatusOnSocket(socket, 503, 'ServiceUnavailable', `the API server of connection "${call.credential.connection.name}" cannot be reached`);
    call.session.request(call, { status: 503, action: 'allow', error: err.message });
  });
  socket.once('close', () => up.destroy());
  // the API server refused the upgrade (RBAC 403, a missing pod, no node address): its answer goes to the client
  up.on('response', (ures) => {
    const status = ures.statusCode ?? 502;
    const chunks: Buffer[] = [];
    ures.on('data', (c: Buffer) => chunks.push(c));
    ures.on('end', () => {
      const body = Buffer.concat(chunks);
      const type = String(ures.headers['content-type'] ?? 'application/json');
      socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 ${status} ${ures.statusMessage ?? ''}\r\ncontent-type: ${type}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`), body]));
      call.session.request(call, { status, action: call.approval ? 'require_approval' : 'allow' });
    });
  });
  up.on('upgrade', (ures, usock, uhead) => {
    const lines = [`HTTP/1.1 101 Switching Protocols`];
    for (let i = 0; i < ures.rawHeaders.length; i += 2) lines.push(`${ures.rawHeaders[i]}: ${ures.rawHeaders[i + 1]}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    usock.on('error', () => socket.destroy());
    socket.on('error', () => usock.destroy());
    const protocol = String(ures.headers['sec-websocket-protocol'] ?? '');
    call.session.request(call, { phase: 'start', status: 101, action: call.approval ? 'require_approval' : 'allow', protocol: protocol || upgrade });
    const counts = { in: 0, out: 0 };
    let release = (): void => undefined;
    const finish = (): void => {
      release();
      call.session.request(call, { phase: 'end', status: 101, action: call.approval ? 'require_approval' : 'allow', bytesIn: counts.in, bytesOut: counts.out });
    };
    let ended = false;
    const close = (): void => {
      if (ended) return;
      ended = true;
      usock.destroy();
      socket.destroy();
      finish();
    };
    release = call.session.hold(close);
    socket.once('close', close);
    // the API server's side closed: what is on its way to the client still goes — the last output, the
    // status and close frames (destroyed at once, a loaded gateway dropped them from the socket's queue
    // and kubectl exited 1 with "close 1006 (abnormal closure)"). The client's socket is ended, and
    // destroyed only if the client does not close its side in time.
    usock.once('close', () => {
      // the request ends (close, above) when the client's socket has closed
      if (!ended) endGracefully(socket);
    });
    if (terminal && CHANNEL_PROTOCOLS.test(protocol)) {
      terminalRelay(o, socket, usock, uhead, counts);
    } else {
      if (uhead.length) socket.write(uhead);
      if (o.head.length) usock.write(o.head);
      socket.on('data', (b: Buffer) => (counts.in += b.length));
      usock.on('data', (b: Buffer) => (counts.out += b.length));
      socket.pipe(usock);
      usock.pipe(socket);
    }
  });
  up.end();
}

/** exec/attach over a channel protocol: recorded both ways; an interactive exec's lines decided at Enter. */
function terminalRelay(o: UpgradeOptions, client: Duplex, server: Duplex, serverHead: Buffer, counts: { in: number; out: number }): void {
  const { call } = o;
  const session = call.session;
  const stream = session.newStream(call.info.subresource);
  const command = call.info.command?.join(' ') ?? '';
  const rec = new TerminalRecorder(stream, (data) => session.emit('terminal', data), { ...(command ? { command } : {}) });
  // server → client: stdout/stderr through the policy's stream masker (re-framed when it masks), read for
  // the record — as text for a tty, byte for byte without one (kubectl cp's tar: MaskedOutput)
  const tty = call.info.tty === true;
  let masking = false;
  const outputs = new Map<number, MaskedOutput>();
  try {
    const probe = o.shell?.masker() ?? null;
    masking = probe !== null;
    outputs.set(CHANNEL.stdout, new MaskedOutput(probe, { tty }));
    outputs.set(CHANNEL.stderr, new MaskedOutput(masking ? o.shell!.masker() : null, { tty }));
  } catch (err) {
    client.write(channelFrame(CHANNEL.stderr, `portcullis: output cannot be masked as the policy requires (${(err as Error).message}); closed\r\n`, false));
    client.destroy();
    server.destroy();
    return;
  }
  const fromServer = new WsFrameReader();
  // the API server's side is read no faster than the client takes it: a client that reads slowly (or not
  // at all) holds back the pod's output in the API server and TCP, not in the gateway's memory
  let waiting = false;
  const backpressure = (): void => {
    if (waiting || !client.writableNeedDrain || client.destroyed) return;
    waiting = true;
    server.pause();
    client.once('drain', () => {
      waiting = false;
      server.resume();
    });
  };
  const onServer = (b: Buffer): void => {
    counts.out += b.length;
    if (!masking) client.write(b);
    try {
      for (const f of fromServer.push(b)) {
        const ch = channelOf(f);
        const isOutput = ch === CHANNEL.stdout || ch === CHANNEL.stderr;
        if (masking && isOutput && !f.fin) throw new Error('fragmented output cannot be masked');
        if (!isOutput) {
          if (masking) {
            // what is still held in the maskers goes out before the stream's error/close message
            if (ch === CHANNEL.error || ch === CHANNEL.close || f.opcode === WS_OP.close) flushMaskers();
            client.write(f.raw);
          }
          continue;
        }
        const { wire, shown } = outputs.get(ch)!.push(f.payload.subarray(1));
        rec.output(shown);
        if (masking && wire.length) client.write(channelFrame(ch, wire, false));
        if (masking) idleFlush();
      }
    } catch {
      // not frames the gateway can read (or mask): the record stops, the stream ends
      client.destroy();
      server.destroy();
      return;
    }
    backpressure();
  };
  // what a masker holds back (the start of what may be a value) goes out once the output pauses
  let idle: NodeJS.Timeout | null = null;
  const idleFlush = (): void => {
    if (idle) clearTimeout(idle);
    idle = setTimeout(() => {
      idle = null;
      if (!client.destroyed) flushMaskers();
    }, IDLE_FLUSH_MS);
    idle.unref();
  };
  const flushMaskers = (): void => {
    if (!masking) return;
    for (const [ch, out] of outputs) {
      const { wire, shown } = out.flush();
      if (wire.length) {
        rec.output(shown);
        client.write(channelFrame(ch, wire, false));
      }
    }
  };
  server.on('data', onServer);
  if (serverHead.length) onServer(serverHead);
  // the terminal's end is recorded before the session's (the session ends when the client's connection closes)
  const release = session.hold(() => rec.end());
  const ended = (): void => {
    if (!client.destroyed && client.writable) flushMaskers();
    rec.end();
    release();
  };
  // first among the server's close listeners: the maskers' tail goes out before the client's socket is ended
  server.prependOnceListener('close', ended);
  client.once('close', ended);

  const model = o.shell && call.info.tty === true && call.info.stdin === true && call.policy !== null ? o.shell.lineModel() : null;
  const decideLines = model !== null;
  const lines = model ? new LineTracker(model) : null;
  const fromClient = new WsFrameReader();
  const queue: WsFrame[] = [];
  let queued = 0;
  let deciding = false;
  const say = (line: string): void => {
    const t = `\r\nportcullis: ${line}\r\n`;
    rec.output(t);
    client.write(channelFrame(CHANNEL.stdout, t, false));
  };
  const stdin = (b: Buffer): void => {
    if (b.length) server.write(channelFrame(CHANNEL.stdin, b, true));
  };
  const decide = async (lineText: string, reliable: boolean): Promise<{ run: boolean; message: string | null; verdict: CommandVerdict; approvalId?: string }> => {
    // a long line is analysed off the event loop (the core's CommandAnalysis), as an SSH shell's is
    const verdict = await (o.shell!.lineAsync?.({ text: lineText, reliable }) ?? o.shell!.line({ text: lineText, reliable }));
    if (verdict.action === 'allow') return { run: true, message: null, verdict };
    if (verdict.action === 'block') return { run: false, message: `blocked${verdict.rule ? ` by ${verdict.rule}` : ''}: ${verdict.reason ?? lineText}`, verdict };
    say(`"${lineText}" needs approval${verdict.rule ? ` (${verdict.rule})` : ''}; waiting…`);
    const r = await holdForApproval({ core: o.core, call, decision: { action: 'require_approval', rule: verdict.rule, reason: verdict.reason ?? lineText }, req: o.req, log: o.logger, text: lineText });
    return r.approved ? { run: true, message: null, verdict, approvalId: r.approvalId } : { run: false, message: r.message, verdict, ...(r.approvalId ? { approvalId: r.approvalId } : {}) };
  };
  const pump = async (): Promise<void> => {
    if (deciding) return;
    deciding = true;
    try {
      while (queue.length) {
        const f = queue.shift()!;
        queued -= f.raw.length;
        if (decideLines && (f.opcode === WS_OP.continuation || (!f.fin && (f.opcode === WS_OP.binary || f.opcode === WS_OP.text)))) {
          // a fragmented message would carry keystrokes past the line decisions: the stream ends
          say('fragmented WebSocket messages are not accepted on an interactive exec; the session ends');
          client.destroy();
          server.destroy();
          return;
        }
        const ch = channelOf(f);
        if (ch === CHANNEL.resize) {
          try {
            const size = JSON.parse(f.payload.subarray(1).toString('utf8')) as { Width?: number; Height?: number };
            if (size.Width && size.Height) rec.resize(size.Width, size.Height);
          } catch {
            // not a size: passed on, the API server answers it
          }
        }
        if (ch !== CHANNEL.stdin) {
          server.write(f.raw);
          continue;
        }
        const data = f.payload.subarray(1);
        rec.input(data.toString('utf8'));
        if (!decideLines) {
          server.write(f.raw);
          continue;
        }
        let from = 0;
        for (let i = 0; i < data.length; i++) {
          if (!lines!.feed(data[i]!)) continue;
          stdin(data.subarray(from, i));
          from = i + 1;
          const line = lines!.take();
          if (!line.text.trim()) {
            stdin(data.subarray(i, i + 1));
            continue;
          }
          const d = await decide(line.text, line.reliable);
          o.call.session.emit('command', {
            stream, source: 'kubectl-exec', command: line.text, action: d.verdict.action, rule: d.verdict.rule, reason: d.verdict.reason,
            reliable: line.reliable, ...(d.approvalId ? { approvalId: d.approvalId, approved: d.run } : {}),
          });
          if (client.destroyed) return;
          if (d.run) stdin(data.subarray(i, i + 1));
          else {
            // the line never runs: cleared in the pod's shell instead of entered
            stdin(CTRL_U);
            lines!.clear();
            say(d.message ?? 'refused');
          }
        }
        stdin(data.subarray(from));
      }
      if (queued < MAX_HELD_BYTES) client.resume();
    } finally {
      deciding = false;
    }
  };
  const onClient = (b: Buffer): void => {
    counts.in += b.length;
    let frames: WsFrame[];
    try {
      frames = fromClient.push(b);
    } catch {
      client.destroy();
      server.destroy();
      return;
    }
    for (const f of frames) {
      queue.push(f);
      queued += f.raw.length;
    }
    if (queued >= MAX_HELD_BYTES) client.pause();
    void pump();
  };
  client.on('data', onClient);
  if (o.head.length) onClient(o.head);
}

/** The channel of a data frame (its first byte), or -1 for control frames and continuations. */
function channelOf(f: WsFrame): number {
  if ((f.opcode !== WS_OP.binary && f.opcode !== WS_OP.text) || f.payload.length === 0) return -1;
  return f.payload[0]!;
}

