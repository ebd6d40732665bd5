/** The api's REST surface as the CLI uses it; every failure is an ApiRequestError with one readable line. */
export class ApiRequestError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly code: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ApiRequestError';
  }
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
}

function errorLine(status: number, text: string): { code?: string; message: string } {
  try {
    const body = JSON.parse(text) as { error?: unknown; error_description?: unknown; message?: unknown };
    if (body.error && typeof body.error === 'object') {
      const e = body.error as { code?: unknown; message?: unknown };
      return { code: typeof e.code === 'string' ? e.code : undefined, message: typeof e.message === 'string' ? e.message : JSON.stringify(e) };
    }
    // OAuth-style errors (token endpoints).
    if (typeof body.error === 'string') {
      return { code: body.error, message: typeof body.error_description === 'string' ? body.error_description : body.error };
    }
    if (typeof body.message === 'string') return { message: body.message };
  } catch {
    // not JSON
  }
  const snippet = text.trim().replace(/\s+/g, ' ').slice(0, 200);
  return { message: snippet || `HTTP ${status}` };
}

/** The useful part of a fetch failure: ECONNREFUSED, ENOTFOUND, a timeout… */
export function networkCause(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string; errors?: { code?: string }[] } };
  if (e?.name === 'TimeoutError') return 'timed out';
  return e?.cause?.code ?? e?.cause?.errors?.[0]?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string | undefined,
    private readonly timeoutMs = 30_000,
  ) {}

  async raw(method: string, path: string, init: { body?: unknown; form?: URLSearchParams; accept?: string; auth?: boolean } = {}): Promise<RawResponse> {
    const headers: Record<string, string> = { accept: init.accept ?? 'application/json' };
    if (init.auth !== false && this.token) headers.authorization = `Bearer ${this.token}`;
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = init.form.toString();
    } else if (init.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.body);
    }
    const url = new URL(path, `${this.baseUrl}/`);
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      const cause = networkCause(err);
      throw new ApiRequestError(`cannot reach the api at ${this.baseUrl} (${cause}): is it running? Set PORTCULLIS_API or log in with --api`, undefined, 'unreachable', { cause: err });
    }
    const text = await res.text();
    if (res.status >= 400) {
      const e = errorLine(res.status, text);
      throw new ApiRequestError(`${e.code ? `${e.code}: ` : ''}${e.message} (HTTP ${res.status} from ${method} ${url.pathname})`, res.status, e.code);
    }
    return { status: res.status, headers: res.headers, text };
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, { body: body ?? (method === 'GET' ? undefined : {}) });
    if (!res.text) return undefined as T;
    try {
      return JSON.parse(res.text) as T;
    } catch (err) {
      throw new ApiRequestError(`the api sent something that is not JSON for ${method} ${path}`, res.status, 'bad_response', { cause: err });
    }
  }
}

/** Lists come back as arrays or as `{items: [...]}`/`{data: [...]}` pages: take either. */
export function asList<T>(value: unknown): T[] {
  if (Array.isArray(value)) return value as T[];
  if (value && typeof value === 'object') {
    for (const key of ['items', 'data', 'results', 'approvals', 'sessions', 'events']) {
      const v = (value as Record<string, unknown>)[key];
      if (Array.isArray(v)) return v as T[];
    }
  }
  return [];
}
