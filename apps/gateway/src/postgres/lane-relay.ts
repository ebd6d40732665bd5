import { BackendMessageType as B, encodeTerminate } from '@portcullis/protocol';
import { LOG_HEAD, LaneSide, laneLengthError, openLane, type NativeLane } from './fast-lane.js';
import type { RelayEnds, RelayHost, RelaySide, RelayTransport } from './relay-transport.js';

const LANE_SIDE: Record<RelaySide, LaneSide> = { client: LaneSide.Client, upstream: LaneSide.Upstream };

/**
 * The native fast lane (fast-lane.ts): the C module relays the sockets itself and hands the session
 * what it must see — every Query, Parse, error and unusual message goes through the session's
 * framers and machine while the lane waits — and logs what it forwarded by itself, which is replayed
 * into the machine with its output muted, so decisions and events are the same as on the JavaScript
 * relay.
 */
export class LaneRelay implements RelayTransport {
  /** lane.bytesRead() at the last count, and upstream bytes handed to the relay since (it counts what it writes) */
  private readonly seen = [0, 0];
  private handed = 0;
  /** inside message(): the lane reads on by its return value, not by resume() */
  private inMessage = false;
  private closed = false;

  private constructor(
    private readonly s: RelayHost,
    private readonly e: RelayEnds,
    private readonly lane: NativeLane,
  ) {}

  /**
   * Hands both sockets to the lane when nothing in the session needs the JavaScript relay on every
   * message (`eligible`: both sides plaintext, a policy that masks nothing and keeps no result rows)
   * and nothing is buffered; null otherwise (the session uses the JavaScript relay).
   */
  static open(s: RelayHost, e: RelayEnds, eligible: boolean): LaneRelay | null {
    if (!eligible || e.clientTls || e.upstreamTls) return null;
    if (e.clientFramer.buffered() > 0 || e.upstreamFramer.buffered() > 0) return null;
    const caps = { client: e.clientFramer.lengthCaps(), upstream: e.upstreamFramer.lengthCaps() };
    let relay: LaneRelay | null = null;
    let lane: NativeLane | string;
    try {
      lane = openLane(e.client, e.upstream, caps, {
        // a frame in the lane's reused buffer is copied out into Node's pooled memory
        onMessage: (side, buf, logBytes, length) => relay!.message(side, length < 0 ? buf : Buffer.from(buf.subarray(0, length)), logBytes),
        onLog: (n) => relay!.replay(n),
        onClose: (side, errno, type, length) => relay!.laneClosed(side, errno, type, length),
      });
    } catch (err) {
      lane = (err as Error).message;
    }
    if (typeof lane === 'string') {
      s.log.debug({ reason: lane }, 'fast lane not used for this session');
      return null;
    }
    relay = new LaneRelay(s, e, lane);
    return relay;
  }

  start(): void {
    const s = this.s;
    s.metrics.fastLaneSessions.inc();
    this.e.client.on('close', () => s.endSession('client_closed'));
    this.e.upstream.on('close', () => s.upstreamClosed());
    this.e.upstream.on('error', (err) => s.log.debug({ err: err.message }, 'upstream socket error'));
  }

  write(side: RelaySide, b: Buffer): void {
    this.lane.write(LANE_SIDE[side], b);
  }

  writeMany(side: RelaySide, parts: readonly Buffer[]): void {
    for (const p of parts) this.lane.write(LANE_SIDE[side], p);
  }

  pumped(side: RelaySide): void {
    const s = this.s;
    if (this.inMessage || this.closed || s.isEnded || (side === 'client' ? s.clientBusy : s.upstreamBusy)) return;
    this.lane.resume(LANE_SIDE[side]);
  }

  fatal(frame: Buffer): boolean {
    if (this.closed) return false;
    // written before the session closes the lane (which gives the queue one more try)
    this.lane.write(LaneSide.Client, frame);
    return true;
  }

  terminateUpstream(frame: Buffer): void {
    this.lane.write(LaneSide.Upstream, frame);
  }

  ending(): void {
    // what the lane forwarded since its last log still counts (result events, statements, bytes)
    if (!this.closed) this.replay(this.lane.take());
  }

  close(graceful: boolean): void {
    if (this.closed) return;
    this.closed = true;
    const up = this.e.upstream;
    if (!graceful && !up.destroyed) this.lane.write(LaneSide.Upstream, encodeTerminate());
    this.lane.close();
  }

  /**
   * A message the lane does not forward by itself: through the framer and machine as usual. True
   * when it is dealt with; else (a hook answers later) the pump resumes the lane when it settles.
   */
  private message(side: LaneSide, frame: Buffer, logBytes: number): boolean {
    const s = this.s;
    const e = this.e;
    if (logBytes > 0) this.replay(logBytes);
    if (s.isEnded) return false;
    this.inMessage = true;
    try {
      if (side === LaneSide.Client) {
        e.clientFramer.push(frame);
        s.pumpClient();
        return !s.clientBusy && !s.isEnded;
      }
      this.handed += frame.length;
      e.upstreamFramer.push(frame);
      s.pumpUpstream();
      return !s.upstreamBusy && !s.isEnded;
    } finally {
      this.inMessage = false;
    }
  }

  /** Replays the lane's log (what it forwarded by itself) into the machine, with its output muted. */
  private replay(n: number): void {
    if (this.closed) return;
    const s = this.s;
    const lane = this.lane;
    const m = this.e.machine;
    const log = n > 0 ? lane.log() : null;
    if (log) {
      s.replaying = true;
      try {
        for (let o = 0; o < n; ) {
          const kind = log[o];
          const side = log[o + 1];
          const len = log.readUInt32LE(o + 2);
          const at = log.readDoubleLE(o + 6);
          const start = o + LOG_HEAD;
          o = start + len;
          if (side === LaneSide.Upstream && kind === B.DataRow) {
            m.replayedRows(log.readUInt32LE(start));
            continue;
          }
          const payload = log.subarray(start, o);
          m.replayed(side === LaneSide.Client ? 'client' : 'upstream', { type: kind, payload, frame: payload }, at);
        }
      } catch (err) {
        s.replaying = false;
        s.relayFailed(err, 'upstream');
        return;
      } finally {
        s.replaying = false;
      }
    }
    const cin = lane.bytesRead(LaneSide.Client);
    const uin = lane.bytesRead(LaneSide.Upstream);
    const dIn = cin - this.seen[0];
    const dOut = uin - this.seen[1] - this.handed;
    this.seen[0] = cin;
    this.seen[1] = uin;
    this.handed = 0;
    s.bytesIn += dIn;
    s.bytesOut += dOut;
    if (dIn > 0) s.metrics.countBytes('in', dIn);
    if (dOut > 0) s.metrics.countBytes('out', dOut);
  }

  private laneClosed(side: LaneSide, errno: number, type: number, length: number): void {
    const s = this.s;
    if (s.isEnded || this.closed) return;
    this.replay(this.lane.take());
    const who = side === LaneSide.Client ? 'client' : 'upstream';
    if (errno === -1) {
      s.relayFailed(laneLengthError(type, length, (who === 'client' ? this.e.clientFramer : this.e.upstreamFramer).lengthCaps()), who);
      return;
    }
    if (errno > 0) s.log.debug({ side: who, errno }, 'socket error in the fast lane');
    if (side === LaneSide.Client) s.endSession('client_closed');
    else s.upstreamClosed();
  }
}
