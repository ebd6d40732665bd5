import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSealed } from '@portcullis/protocol';
import { ConfigPublisherService } from '../apps/api/src/config-publisher/config-publisher.service.js';
import { startTestApi, type TestApi } from '../apps/api/test/support.js';
import { startHarness, type Harness, type HarnessConnection } from '../apps/gateway/test/support/harness.js';
import { attachSshTarget, type SshWorld } from '../apps/gateway/test/support/ssh-world.js';
import { SSHD_BINARY, privateMountsUnavailable, startSshd, type Sshd } from './support/sshd.js';

/**
 * An SSH target whose credential is a password, not a key: the admin registers it over REST, the api
 * seals it into the pool's config snapshot, the gateway opens it and logs in to a real sshd with it
 * (password authentication only, for a throwaway user that exists only in the sshd's private mount
 * namespace: the host's /etc/passwd and /etc/shadow are never written). Needs root (or
 * CAP_SYS_ADMIN) for `unshare -m`; CI runs as root.
 */
const skip = existsSync(SSHD_BINARY) ? privateMountsUnavailable() : `no ${SSHD_BINARY}`;

describe.skipIf(skip !== null)(`an SSH target with a password credential${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const sfx = randomBytes(3).toString('hex');
  const user = `pcpw${sfx}`;
  const group = `pw-eng-${sfx}`;
  const names: string[] = [];
  const password = `pw-${randomBytes(12).toString('base64url')}`;
  let sshd: Sshd;
  let h: Harness;
  let api: TestApi;
  let w: SshWorld;

  /** registers an ssh connection over REST and returns it as the gateway's snapshot carries it, its secret opened with the pool key */
  async function register(name: string, secret: Record<string, string>): Promise<HarnessConnection> {
    const admin = (m: 'post' | 'put', path: string, body: object) => api.http[m](path).set('Authorization', api.admin).send(body);
    const c = await admin('post', '/v1/connections', {
      name, type: 'ssh', pool: h.pool, host: sshd.host, port: sshd.port, username: user, secret, hostKeys: [sshd.hostPublicKey], allowedGroups: [group],
    });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    names.push(name);
    // what the gateway gets: the api's snapshot for the pool (its transport over NATS is not under test here)
    const publisher = api.get(ConfigPublisherService);
    await publisher.publishNow();
    const snap = (await publisher.current(h.pool))!;
    const { secret: sealed, ...conn } = snap.connections.find((x: { name: string }) => x.name === name)! as { secret: string; name: string } & Record<string, unknown>;
    return { ...conn, password: openSealed(h.poolKeys.privateKey, sealed, `connection:${name}`) } as unknown as HarnessConnection;
  }

  beforeAll(async () => {
    sshd = await startSshd({ passwordUser: { name: user, password } });
    h = await startHarness({ connection: { policy: null } });
    api = await startTestApi();
    const pool = await api.http.put(`/v1/gateway-pools/${h.pool}`).set('Authorization', api.admin).send({ publicKey: h.poolKeys.publicKey });
    expect(pool.status, JSON.stringify(pool.body)).toBe(201);
    expect((await api.http.post('/v1/groups').set('Authorization', api.admin).send({ name: group })).status).toBe(201);
    const conn = await register(`pw-${sfx}`, { password });
    expect(JSON.parse(conn.password!)).toEqual({ password });
    w = await attachSshTarget(h, conn, true, sshd);
  }, 120_000);

  afterAll(async () => {
    await w?.stop();
    if (!w) {
      await h?.stop().catch(() => undefined);
      await sshd?.stop();
    }
    if (api) {
      for (const n of names) await api.http.delete(`/v1/connections/${n}`).set('Authorization', api.admin).catch(() => undefined);
      await api.http.delete(`/v1/groups/${group}`).set('Authorization', api.admin).catch(() => undefined);
      await api.close();
    }
  });

  it('the gateway logs in to the target with the stored password: a real ssh exec runs as that user', async () => {
    const token = await h.credential({ cn: w.connection.name, groups: [group] });
    const r = await w.ssh(token, ['id -un; pwd; echo ran-$((6*7))']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${user}\n${join(sshd.dir, `home-${user}`)}\nran-42\n`);
    expect(r.code).toBe(0);
    // sshd says how: a password, for the throwaway user (no key was offered: the connection holds none)
    expect(sshd.log()).toMatch(new RegExp(`Accepted password for ${user} from 127\\.0\\.0\\.1`));
    expect(sshd.log()).not.toMatch(/Accepted publickey/);
  });

  it('a wrong stored password: the client is told the target refused the gateway\'s credential', async () => {
    const name = `pw-wrong-${sfx}`;
    const conn = await register(name, { password: `${password}-not` });
    await h.putSnapshot({ connections: [...h.snapshotInput.connections.filter((c) => c.name !== name), conn] });
    const token = await h.credential({ cn: name, groups: [group] });
    const r = await w.ssh(token, ['echo never'], { user: name });
    expect(r.code).toBe(255);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`portcullis: the target of connection "${name}" refused the gateway's credential`);
    expect(sshd.log()).toMatch(new RegExp(`Failed password for ${user} from 127\\.0\\.0\\.1`));
  });
});
