import { Body, Controller, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { clearConsoleCookie } from './oidc/console-session.js';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { ApiZodBody, ApiZodResponse } from '../common/openapi.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { CurrentPrincipal } from './decorators.js';
import { MeService } from './me.service.js';
import type { ApiPrincipal } from './principal.js';
import { TokensService, type RevokedToken } from './tokens.service.js';
import { meResponseSchema, revokeBodySchema, revokeResponseSchema, type MeResponse, type RevokeBody } from './dto/auth.dto.js';

@ApiTags('auth')
@ApiBearerAuth()
@Controller('v1')
export class AuthController {
  constructor(
    private readonly tokens: TokensService,
    private readonly me: MeService,
  ) {}

  @Get('me')
  @ApiZodResponse(meResponseSchema)
  whoAmI(@CurrentPrincipal() principal: ApiPrincipal): Promise<MeResponse> {
    return this.me.describe(principal);
  }

  @Post('auth/revoke')
  @HttpCode(200)
  @ApiZodBody(revokeBodySchema)
  @ApiZodResponse(revokeResponseSchema)
  revoke(@Body(new ZodValidationPipe(revokeBodySchema)) body: RevokeBody, @CurrentPrincipal() principal: ApiPrincipal): Promise<RevokedToken> {
    return this.tokens.revokeAs(body.jti, principal);
  }

  /** Sign out (the web console): revokes the token the caller used and clears the console's cookie. */
  @Post('auth/logout')
  @HttpCode(204)
  async logout(@CurrentPrincipal() principal: ApiPrincipal, @Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<void> {
    if (principal.tokenId) await this.tokens.revoke(principal.tokenId, principal.subject);
    clearConsoleCookie(req, res);
  }
}
