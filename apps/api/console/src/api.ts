/** REST calls of the console: same origin, the session cookie, and the header that marks them as the console's (CSRF). */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export const CONSOLE_HEADERS = { 'x-portcullis-console': '1' } as const;

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: { ...CONSOLE_HEADERS, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new ApiError(res.status, e?.code ?? 'error', e?.message ?? `HTTP ${res.status}`);
  }
  return (json ?? text) as T;
}

export async function download(path: string, filename: string): Promise<void> {
  const res = await fetch(path, { credentials: 'same-origin', headers: CONSOLE_HEADERS });
  if (!res.ok) throw new ApiError(res.status, 'download_failed', `download failed: HTTP ${res.status}`);
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export interface Me {
  identityId: string | null;
  subject: string;
  kind: string;
  displayName: string | null;
  email: string | null;
  groups: string[];
  roles: string[];
}

export const hasRole = (me: Me, ...roles: string[]): boolean => me.roles.includes('admin') || roles.some((r) => me.roles.includes(r));
