import { Controller, Get, Query, Req, Res } from '@nestjs/common';
import { ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { BadRequestError } from '../../common/errors.js';
import { Public } from '../decorators.js';
import { cliRedirectTarget, parseCliRedirect } from './cli-redirect.js';
import { parseConsoleRedirect, setConsoleCookie } from './console-session.js';
import { OidcLoginService } from './oidc-login.service.js';

/**
 * Browser login: GET /v1/auth/login → the IdP → GET /v1/auth/callback → the api token as JSON, or, when
 * the login started with `?cli_redirect=<loopback URL>`, a redirect there with the token in the query.
 */
@ApiTags('auth')
@Public()
@Controller('v1/auth')
export class OidcController {
  constructor(private readonly oidc: OidcLoginService) {}

  @Get('login')
  @ApiQuery({ name: 'cli_redirect', required: false, description: 'loopback URL (http://127.0.0.1:<port>/...) to send the token to' })
  @ApiQuery({ name: 'redirect', required: false, description: 'web console path (/console/...) to return to, signed in by an HttpOnly cookie' })
  async login(@Req() req: Request, @Res() res: Response, @Query('cli_redirect') rawCliRedirect?: unknown, @Query('redirect') rawRedirect?: unknown): Promise<void> {
    const cliRedirect = parseCliRedirect(rawCliRedirect);
    const consoleRedirect = parseConsoleRedirect(rawRedirect);
    if (cliRedirect && consoleRedirect) throw new BadRequestError('give cli_redirect or redirect, not both', 'invalid_redirect');
    const state = cliRedirect ? { cliRedirect: cliRedirect.href } : consoleRedirect ? { consoleRedirect } : undefined;
    const outcome = await this.oidc.authenticate(req, { state });
    if (outcome.kind !== 'redirect') {
      this.oidc.userFrom(outcome); // throws the fitting error
      throw new BadRequestError('login did not start');
    }
    res.setHeader('Cache-Control', 'no-store');
    res.redirect(outcome.status, outcome.url);
  }

  @Get('callback')
  async callback(@Req() req: Request, @Res() res: Response): Promise<void> {
    const q = req.query as Record<string, unknown>;
    // Without these the strategy would start a new login instead of finishing one.
    if (q.code === undefined && q.error === undefined) throw new BadRequestError('callback: expected code or error from the identity provider', 'invalid_request');
    const { user, cliRedirect, consoleRedirect } = this.oidc.userFrom(await this.oidc.authenticate(req, {}));
    const result = await this.oidc.completeLogin(user);
    // The session only carried the login state; drop it.
    await new Promise<void>((resolve) => (req.session ? req.session.destroy(() => resolve()) : resolve()));
    res.setHeader('Cache-Control', 'no-store');
    if (cliRedirect) {
      res.redirect(302, cliRedirectTarget(cliRedirect, result));
      return;
    }
    if (consoleRedirect) {
      // re-checked: the state came back through the browser
      setConsoleCookie(req, res, result.access_token, result.expires_in);
      res.redirect(303, parseConsoleRedirect(consoleRedirect) ?? '/console');
      return;
    }
    res.status(200).json(result);
  }
}
