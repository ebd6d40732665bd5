// Small fetch helpers shared by the start script: JSON calls against the api and readiness polling.

export class ApiError extends Error {
  constructor(method, path, status, code, message) {
    super(`${method} ${path} → ${status}${code ? ` ${code}` : ''}: ${message}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** A JSON client for the api with a bearer token. Errors use the `{error: {code, message}}` envelope. */
export function apiClient(baseUrl, token) {
  async function call(method, path, body) {
    const res = await fetch(new URL(path, baseUrl), {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = json?.error;
      const message = typeof e === 'object' && e ? e.message : (json?.error_description ?? json?.message ?? text.slice(0, 200));
      throw new ApiError(method, path, res.status, typeof e === 'object' && e ? e.code : (typeof e === 'string' ? e : undefined), message || res.statusText);
    }
    return json;
  }
  return {
    get: (p) => call('GET', p),
    post: (p, b) => call('POST', p, b ?? {}),
    put: (p, b) => call('PUT', p, b ?? {}),
    patch: (p, b) => call('PATCH', p, b ?? {}),
    del: (p) => call('DELETE', p),
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `url` until it answers 200. Gives up after `timeoutMs` or as soon as `alive()` says the process died.
 * @returns {Promise<{ok: true} | {ok: false, reason: string}>}
 */
export async function waitForOk(url, { timeoutMs = 60_000, intervalMs = 250, alive = () => true } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!alive()) return { ok: false, reason: 'the process exited' };
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      const body = await res.text();
      if (res.status === 200) return { ok: true };
      last = `${res.status} ${body.slice(0, 300).replace(/\s+/g, ' ')}`;
    } catch (err) {
      last = err?.cause?.code ?? err?.message ?? String(err);
    }
    await sleep(intervalMs);
  }
  return { ok: false, reason: `not ready after ${Math.round(timeoutMs / 1000)}s (last answer: ${last})` };
}
