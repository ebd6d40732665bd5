import { Controller, Get, Query, Req, Res } from '@nestjs/common';
import { ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { BadRequestError } from '../../common/errors.js';
import { Public } from '../decorators.js';
import { cliRedirectTarget, parseCliRedirect } from './cli-redirect.js';
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
  async login(@Req() req: Request, @Res() res: Response, @Query('cli_redirect') rawCliRedirect?: unknown): Promise<void> {
    const cliRedirect = parseCliRedirect(rawCliRedirect);
    const outcome = await this.oidc.authenticate(req, { state: cliRedirect ? { cliRedirect: cliRedirect.href } : undefined });
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
    const { user, cliRedirect } = this.oidc.userFrom(await this.oidc.authenticate(req, {}));
    const result = await this.oidc.completeLogin(user);
    // The session only carried the login state; drop it.
    await new Promise<void>((resolve) => (req.session ? req.session.destroy(() => resolve()) : resolve()));
    res.setHeader('Cache-Control', 'no-store');
    if (cliRedirect) {
      res.redirect(302, cliRedirectTarget(cliRedirect, result));
      return;
    }
    res.status(200).json(result);
  }
}
