import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';

/**
 * The web console (apps/api/console, built by `pnpm build` into apps/api/console/dist) served at
 * /console: static files only, the same origin as the REST API it calls. Strict CSP: scripts, styles
 * and connections to this origin only, no inline script or style markup, no eval, no framing.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  // wasm-unsafe-eval lets WebAssembly compile (asciinema-player's terminal emulator); it allows no JS eval
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

/** apps/api/console/dist, from apps/api/dist/web-console (built) or apps/api/src/web-console (tests run the sources) */
export function consoleDir(): string {
  return fileURLToPath(new URL('../../console/dist/', import.meta.url));
}

function securityHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  next();
}

export function serveConsole(http: express.Express, dir = consoleDir()): void {
  const index = join(dir, 'index.html');
  const assets = join(dir, 'assets');
  http.use(
    '/console',
    securityHeaders,
    express.static(dir, {
      index: false,
      redirect: false,
      // file names under assets/ carry their content hash
      setHeaders: (res, path) => res.setHeader('Cache-Control', path.startsWith(assets) ? 'public, max-age=31536000, immutable' : 'no-cache'),
    }),
    (req: Request, res: Response, next: NextFunction) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return next();
      // a file that is not there is a 404; any other path is a page of the app (client-side routes)
      const last = req.path.split('/').pop() ?? '';
      if (last.includes('.')) {
        res.status(404).type('text/plain').send('not found');
        return;
      }
      res.setHeader('Cache-Control', 'no-cache');
      if (!existsSync(index)) {
        res.status(503).type('text/plain').send('The web console is not built: run `pnpm build`.');
        return;
      }
      res.sendFile(index);
    },
  );
}
