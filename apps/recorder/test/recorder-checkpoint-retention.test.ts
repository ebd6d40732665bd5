import { createPublicKey, verify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_CHAIN } from '@portcullis/protocol';
import { checkpointPayload } from '../src/checkpoints.js';
import type { Recorder } from '../src/recorder.js';
import { brokenAt, Harness } from './helpers.js';

describe('recorder: checkpoints and retention', () => {
  let h: Harness;
  let rec: Recorder;

  beforeAll(async () => {
    h = await new Harness().setup();
    // Retention far in the past: only sessions this test backdates to 1999 are old enough.
    rec = await h.recorder({ RETENTION_DAYS: '3650', RETENTION_INTERVAL_SECONDS: '3600' });
  });
  afterAll(async () => {
    await h.teardown();
  });

  it('writes a signed checkpoint of changed chain heads, as a row and a control-plane event', async () => {
    const sid = h.newSession();
    const evs = h.sessionEvents(sid, 3);
    await h.publish(evs);
    await h.waitFor(() => h.countFor([sid]), (n) => n === evs.length);
    const id = await rec.checkpoint();
    expect(id).toBeTruthy();
    const row = (await h.db.query(`SELECT id::text, time, heads, signature FROM "Checkpoint" WHERE id = $1`, [id])).rows[0];
    const tail = (await h.eventsOf(sid)).at(-1);
    expect(row.heads[sid]).toEqual({ seq: evs.length, hash: tail.hash });

    const jwk = (await (await fetch(`http://127.0.0.1:${rec.port}/checkpoint-key`)).json()).keys[0];
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    const payload = checkpointPayload({ id: row.id, time: row.time.toISOString(), heads: row.heads });
    expect(verify(null, payload, key, Buffer.from(row.signature, 'base64url'))).toBe(true);
    const forged = checkpointPayload({ id: row.id, time: row.time.toISOString(), heads: { ...row.heads, [sid]: { seq: 1, hash: tail.hash } } });
    expect(verify(null, forged, key, Buffer.from(row.signature, 'base64url'))).toBe(false);

    const ev = (await h.db.query(`SELECT type, data, identity FROM "Event" WHERE chain = $1 AND data->>'checkpointId' = $2`, [CONTROL_CHAIN, id])).rows[0];
    expect(ev).toMatchObject({ type: 'checkpoint', identity: 'system:recorder', data: { signature: row.signature, kid: jwk.kid } });
    // nothing changed since: no new checkpoint
    expect(await rec.checkpoint()).toBeNull();
  });

  it('deletes sessions older than the retention age and records the deletion as an audit event', async () => {
    const old = h.newSession();
    const fresh = h.newSession();
    const oldEvents = h.sessionEvents(old, 2, new Date('1999-01-01T00:00:00Z'));
    const freshEvents = h.sessionEvents(fresh, 2);
    await h.publish([...oldEvents, ...freshEvents]);
    await h.waitFor(() => h.countFor([old, fresh]), (n) => n === oldEvents.length + freshEvents.length);

    const r = await rec.runRetention();
    expect(r.sessions).toBeGreaterThanOrEqual(1);
    expect(await h.countFor([old])).toBe(0);
    expect((await h.db.query(`SELECT 1 FROM "Session" WHERE id = $1`, [old])).rowCount).toBe(0);
    expect(await h.countFor([fresh])).toBe(freshEvents.length);

    const audit = (await h.db.query(`SELECT type, identity, data FROM "Event" WHERE chain = $1 AND type = 'retention.deleted' AND data->'sessionIds' ? $2`, [CONTROL_CHAIN, old])).rows;
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ identity: 'system:recorder', data: { action: 'delete', target: 'sessions', retentionDays: 3650 } });
    expect(audit[0].data.events).toBeGreaterThanOrEqual(oldEvents.length);
    // the control-plane chain stays intact around the deletion event
    const control = await h.db.query(`SELECT id::text, seq, type, "prevHash", hash, data, time, identity, connection, gateway, "sessionId" FROM "Event" WHERE chain = $1 ORDER BY seq`, [CONTROL_CHAIN]);
    expect(brokenAt(control.rows)).toBeNull();
    // a second run finds nothing more to delete
    const again = await rec.runRetention();
    expect(again.sessions).toBe(0);
  });
});
