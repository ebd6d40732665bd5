import { ApiClient } from './api-client.js';
import { resolveConfig, type ResolvedConfig } from './config.js';

export interface Output {
  write(chunk: string): unknown;
}

/** Everything a command touches from the outside world, so tests can run the CLI in-process. */
export interface CliContext {
  env: NodeJS.ProcessEnv;
  stdout: Output;
  stderr: Output;
  /** Opens a URL in the user's browser; a no-op where there is none. */
  openBrowser: (url: string) => void;
  /** Aborts long-running commands (login wait, audit export --follow): Ctrl-C in the real CLI. */
  signal: AbortSignal;
}

/** Exit codes (README "CLI"). */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  auth: 3,
  /** sessions verify: the hash chain is broken */
  invalid: 4,
} as const;

export class NotLoggedInError extends Error {
  constructor(message = 'not logged in: run `portcullis login` (or set PORTCULLIS_TOKEN)') {
    super(message);
    this.name = 'NotLoggedInError';
  }
}

export function config(ctx: CliContext): ResolvedConfig {
  return resolveConfig(ctx.env);
}

/** An api client with the saved or env token; refuses early when there is none. */
export function authedClient(ctx: CliContext): ApiClient {
  const c = config(ctx);
  if (!c.token) throw new NotLoggedInError();
  if (c.tokenSource === 'file' && c.expiresAt && Date.parse(c.expiresAt) <= Date.now()) {
    throw new NotLoggedInError(`your token expired at ${c.expiresAt}: run \`portcullis login\` again`);
  }
  return new ApiClient(c.api, c.token);
}

export function println(out: Output, line = ''): void {
  out.write(`${line}\n`);
}
