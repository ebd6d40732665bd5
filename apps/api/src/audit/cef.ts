import type { RecordedEvent } from '@portcullis/protocol';
import { carriesDecision, carriesResult, summary } from './ocsf.js';

// CEF (ArcSight Common Event Format) rev 0: `CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension`.
const header = (s: string) => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ');
const value = (s: string) => s.replace(/\\/g, '\\\\').replace(/=/g, '\\=').replace(/\r/g, '\\r').replace(/\n/g, '\\n');

function severity(e: RecordedEvent): number {
  if (carriesDecision(e) && e.data.action === 'block') return 8;
  if (carriesDecision(e) && e.data.action === 'require_approval') return 6;
  if (carriesResult(e) && e.data.error) return 4;
  if (e.sessionId === null) return 5;
  return 3;
}

export function toCef(e: RecordedEvent, position: bigint): string {
  const ext: [string, string | number | null | undefined][] = [
    ['rt', Date.parse(e.time)],
    ['externalId', e.id],
    ['suser', e.identity],
    ['cs1Label', 'sessionId'], ['cs1', e.sessionId],
    ['cs2Label', 'connection'], ['cs2', e.connection],
    ['cs3Label', 'gateway'], ['cs3', e.gateway],
    ['cn1Label', 'seq'], ['cn1', e.seq],
    ['cn2Label', 'position'], ['cn2', position.toString()],
    ['cs4Label', 'hash'], ['cs4', e.hash],
    ['cs5Label', 'prevHash'], ['cs5', e.prevHash],
    ['act', typeof e.data.action === 'string' ? e.data.action : undefined],
    ['msg', summary(e)],
    ['cs6Label', 'data'], ['cs6', JSON.stringify(e.data)],
  ];
  const extension = ext
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${value(String(v))}`)
    .join(' ');
  return `CEF:0|Portcullis|Portcullis|0.1.0|${header(e.type)}|${header(e.type)}|${severity(e)}|${extension}`;
}
