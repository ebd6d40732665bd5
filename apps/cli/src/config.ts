import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export const DEFAULT_API = 'http://127.0.0.1:8080';

/** What `portcullis login` saves: ~/.portcullis/cli.json (mode 0600). */
export interface CliConfigFile {
  api?: string;
  token?: string;
  expiresAt?: string;
  subject?: string;
}

export interface ResolvedConfig {
  api: string;
  token?: string;
  /** Where the token came from, for error messages. */
  tokenSource: 'env' | 'file' | 'none';
  expiresAt?: string;
  subject?: string;
  path: string;
}

export function configPath(env: NodeJS.ProcessEnv): string {
  return env.PORTCULLIS_CLI_CONFIG?.trim() || join(env.HOME?.trim() || homedir(), '.portcullis', 'cli.json');
}

export class ConfigFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigFileError';
  }
}

export function readConfigFile(path: string): CliConfigFile {
  if (!existsSync(path)) return {};
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return parsed && typeof parsed === 'object' ? (parsed as CliConfigFile) : {};
  } catch (err) {
    throw new ConfigFileError(`${path} is not valid JSON; delete it and log in again`, { cause: err });
  }
}

export function writeConfigFile(path: string, config: CliConfigFile): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Env wins over the file: PORTCULLIS_API, PORTCULLIS_TOKEN. */
export function resolveConfig(env: NodeJS.ProcessEnv): ResolvedConfig {
  const path = configPath(env);
  const file = readConfigFile(path);
  const api = (env.PORTCULLIS_API?.trim() || file.api || DEFAULT_API).replace(/\/+$/, '');
  if (env.PORTCULLIS_TOKEN?.trim()) return { api, token: env.PORTCULLIS_TOKEN.trim(), tokenSource: 'env', path };
  // A token saved for another api is no use here.
  if (file.token && (!file.api || file.api.replace(/\/+$/, '') === api)) {
    return { api, token: file.token, tokenSource: 'file', expiresAt: file.expiresAt, subject: file.subject, path };
  }
  return { api, tokenSource: 'none', path };
}
