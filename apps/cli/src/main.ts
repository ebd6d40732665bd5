#!/usr/bin/env node
import { spawn } from 'node:child_process';
import { run } from './cli.js';

function openBrowser(url: string): void {
  if (!process.stdout.isTTY || process.env.PORTCULLIS_NO_BROWSER) return;
  const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(cmd, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined); // no browser here: the printed URL is enough
    child.unref();
  } catch {
    // same
  }
}

const controller = new AbortController();
// Ctrl-C ends `login` and `audit export --follow` cleanly (they watch the signal). While psql runs
// (`connect` adds its own listener) psql owns Ctrl-C; otherwise give a request a moment, then go.
const interrupt = (): void => {
  controller.abort();
  if (process.listenerCount('SIGINT') <= 1) setTimeout(() => process.exit(130), 1500).unref();
};
process.on('SIGINT', interrupt);
process.on('SIGTERM', interrupt);

const code = await run(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  openBrowser,
  signal: controller.signal,
});
process.exitCode = code;
// Long polls and servers are closed by now; exit without waiting for idle keep-alive sockets.
process.stdout.write('', () => process.exit(code));
