import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeSkipReason, spawnKubectl } from '../../../test/support/kube-cluster.js';
import { waitFor } from './support/harness.js';
import { startSshKubeWorld, type SshKubeWorld } from './support/ssh-kube-world.js';

/**
 * The session metrics on /metrics carry `protocol` (postgres, ssh, kubernetes) under their existing
 * names: live sessions, sessions by outcome (refusals included) and sessions the gateway ended.
 * Real sessions of each protocol: pg, OpenSSH ssh, kubectl against a real kube-apiserver.
 */
const kubeSkip = kubeSkipReason();
if (kubeSkip) console.warn(`session-metrics: Kubernetes cases skipped: ${kubeSkip}`);

let world: SshKubeWorld;

beforeAll(async () => {
  world = await startSshKubeWorld(kubeSkip);
}, 120_000);

afterAll(async () => {
  await world?.stop();
});

const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${world.h.gateway.httpPort}/metrics`)).text();
/** a sample's value (0 when the series is not there) */
const sample = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
};

describe('session metrics by protocol', () => {
  it('live sessions, outcomes and terminations are counted per protocol, under the existing names', async () => {
    const { h, w, k } = world;
    const protocols = kubeSkip ? ['postgres', 'ssh'] : ['postgres', 'ssh', 'kubernetes'];
    const first = await scrape();
    // every served protocol has its gauge before its first session
    for (const p of protocols) expect(first).toContain(`portcullis_gateway_live_sessions{protocol="${p}"} 0`);

    const jti = { postgres: randomUUID(), ssh: randomUUID(), kubernetes: randomUUID() };
    const client = new pg.Client(h.clientConfig(await h.credential({ jti: jti.postgres })));
    client.on('error', () => undefined);
    await client.connect();
    const ssh = w.spawnSsh(await h.credential({ cn: 'box', jti: jti.ssh }), ['sleep', '120']);
    // a watch keeps the kubectl connection, and so its session, open
    const watch = k && world.cluster ? spawnKubectl(world.cluster.bins.kubectl, ['--kubeconfig', k.kubeconfig(h.gateway, 'kube', await h.credential({ cn: 'kube', jti: jti.kubernetes })), 'get', 'ns', '--watch']) : null;
    try {
      let text = '';
      await waitFor(async () => {
        text = await scrape();
        return protocols.every((p) => sample(text, `portcullis_gateway_live_sessions{protocol="${p}"}`) === 1);
      }, 60_000, 200).catch(() => {
        throw new Error(`live sessions never reached 1 each:\n${text.split('\n').filter((l) => l.includes('sessions')).join('\n')}`);
      });
      for (const p of protocols) expect(sample(text, `portcullis_gateway_sessions_total{outcome="ok",protocol="${p}"}`)).toBeGreaterThanOrEqual(1);

      // sessions refused are counted with their protocol (a Postgres login with a forged credential; an SSH
      // login to a Postgres connection — a refused SSH credential is not: the client may try another)
      const forged = `${await h.credential()}x`;
      await expect(new pg.Client(h.clientConfig(forged)).connect()).rejects.toThrow();
      expect((await w.ssh(await h.credential(), ['true'], { user: h.connectionName })).code).not.toBe(0);
      text = await scrape();
      expect(sample(text, 'portcullis_gateway_sessions_total{outcome="auth_invalid",protocol="postgres"}')).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'portcullis_gateway_sessions_total{outcome="wrong_protocol",protocol="ssh"}')).toBeGreaterThanOrEqual(1);
      // every refused credential is an auth error, with the protocol it came in on (the SSH password and the
      // bearer token forged like the Postgres one)
      expect((await w.ssh(forged, ['true'])).code).not.toBe(0);
      if (k && world.cluster) {
        const refused = spawnKubectl(world.cluster.bins.kubectl, ['--kubeconfig', k.kubeconfig(h.gateway, 'kube', forged), 'get', 'ns']);
        await new Promise((r) => (refused.proc.exitCode !== null ? r(null) : refused.proc.once('close', r)));
      }
      text = await scrape();
      for (const p of protocols) expect(sample(text, `portcullis_gateway_errors_total{kind="auth",protocol="${p}"}`), p).toBeGreaterThanOrEqual(1);

      // the gateway ends the three sessions (their credentials revoked): terminated and no longer live, per protocol
      await h.putSnapshot({ revokedTokenIds: Object.values(jti) });
      await waitFor(async () => {
        text = await scrape();
        return protocols.every((p) => sample(text, `portcullis_gateway_live_sessions{protocol="${p}"}`) === 0);
      }, 60_000, 200);
      for (const p of protocols) expect(sample(text, `portcullis_gateway_sessions_terminated_total{reason="credential_revoked",protocol="${p}"}`)).toBe(1);
      // nothing is counted without its protocol
      const unlabelled = text.split('\n').filter((l) => /^portcullis_gateway_(live_sessions|sessions_total|sessions_terminated_total)[{ ]/.test(l) && !l.includes('protocol="'));
      expect(unlabelled).toEqual([]);
    } finally {
      await client.end().catch(() => undefined);
      ssh.kill();
      watch?.proc.kill();
    }
  }, 180_000);
});
