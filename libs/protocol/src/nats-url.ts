/**
 * NATS_URL may carry credentials, as every other *_URL does: `nats://user:password@host:4222` (a user of
 * the server's `authorization { users = [...] }`), `nats://token@host:4222` (a token), several servers
 * separated by commas. nats.js does not read credentials from a URL, so every app passes its NATS_URL
 * through this and spreads the result into connect(). `tls://` asks for TLS (a private CA: NODE_EXTRA_CA_CERTS).
 */
export interface NatsConnectOptions {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
}

export function natsConnectOptions(url: string): NatsConnectOptions {
  const out: NatsConnectOptions = { servers: [] };
  for (const raw of url.split(',').map((s) => s.trim()).filter(Boolean)) {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      out.servers.push(raw);
      continue;
    }
    const user = decodeURIComponent(u.username);
    const pass = decodeURIComponent(u.password);
    if (user && pass) Object.assign(out, { user, pass });
    else if (user) out.token = user;
    u.username = '';
    u.password = '';
    out.servers.push(u.toString().replace(/\/$/, ''));
  }
  return out;
}

/** NATS_URL with any password or token replaced by `***`: for log lines and errors. */
export function redactNatsUrl(url: string): string {
  return url.replace(/\/\/([^@/,]*)@/g, (_m, cred: string) => `//${cred.includes(':') ? `${cred.split(':')[0]}:***` : '***'}@`);
}
