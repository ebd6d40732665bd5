import { createHmac, timingSafeEqual } from 'node:crypto';
import type { WireEvent } from '@portcullis/protocol';

const J = JSON.stringify;

/** verifyEventSignature() reusing the event's canonical `data` (same bytes; see the spec). */
export function verifySignatureFast(e: WireEvent, canonicalData: string, key: Buffer): boolean {
  if (!e.sig || !/^[0-9a-f]{64}$/.test(e.sig)) return false;
  const body = `{"connection":${J(e.connection)},"data":${canonicalData},"gateway":${J(e.gateway)},"id":${J(e.id)},"identity":${J(e.identity)},"seq":${e.seq},"sessionId":${J(e.sessionId)},"time":${J(e.time)},"type":${J(e.type)}}`;
  const want = createHmac('sha256', key).update(body).digest();
  return timingSafeEqual(want, Buffer.from(e.sig, 'hex'));
}
