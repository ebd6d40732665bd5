import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuthController } from './auth.controller.js';
import { AuthGuard } from './auth.guard.js';
import { MeService } from './me.service.js';
import { TokensService } from './tokens.service.js';

/**
 * Tokens, the global guard, /v1/me and revocation. Global: TokensService is used by the auth flows
 * (OIDC, token exchange), connections (gateway credentials) and approvals (signJws).
 */
@Global()
@Module({
  controllers: [AuthController],
  providers: [TokensService, MeService, AuthGuard, { provide: APP_GUARD, useExisting: AuthGuard }],
  exports: [TokensService, AuthGuard],
})
export class AuthModule {}
