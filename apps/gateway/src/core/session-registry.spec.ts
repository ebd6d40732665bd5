import { describe, expect, it } from 'vitest';
import { createLogger } from '../logger.js';
import type { LiveSession } from './session-core.types.js';
import { SessionRegistry } from './session-registry.js';

describe('SessionRegistry', () => {
  it('bytesRelayed moves while a session relays without statements or events, and when it ends', () => {
    const r = new SessionRegistry({ config: () => null, logger: createLogger('silent'), endAtExpiry: false });
    const scp = { id: 'a', protocol: 'ssh', bytesIn: 0, bytesOut: 0 } as unknown as LiveSession & { bytesIn: number; bytesOut: number };
    const counted = { id: 'b', protocol: 'kubernetes' } as unknown as LiveSession;
    r.add(scp);
    r.add(counted);
    expect(r.bytesRelayed).toBe(0);
    scp.bytesIn += 32_768;
    scp.bytesOut += 28;
    expect(r.bytesRelayed).toBe(32_796);
    r.ended(scp);
    expect(r.bytesRelayed).toBe(0);
  });
});
