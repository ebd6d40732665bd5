import { randomBytes } from 'node:crypto';
import { Module, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import session from 'express-session';
import { IdentitiesModule } from '../../identities/identities.module.js';
import { LoginStateStore } from './login-state.store.js';
import { OidcController } from './oidc.controller.js';
import { OidcLoginService } from './oidc-login.service.js';

const LOGIN_STATE_TTL_MS = 10 * 60_000;

/**
 * OIDC login for people. A session (express-session) exists only on /v1/auth/login and /v1/auth/callback,
 * to carry the state, nonce and cli_redirect across the IdP round trip; the api itself is stateless
 * (bearer tokens). The store is in memory and bounded (LoginStateStore), so a login must start and finish on
 * the same api process: sticky sessions behind a load balancer, or a shared store here.
 */
@Module({
  imports: [IdentitiesModule],
  controllers: [OidcController],
  providers: [OidcLoginService],
})
export class OidcModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer
      .apply(
        session({
          name: 'portcullis.login',
          secret: randomBytes(32).toString('base64url'),
          store: new LoginStateStore(LOGIN_STATE_TTL_MS),
          resave: false,
          saveUninitialized: false,
          rolling: false,
          cookie: { httpOnly: true, sameSite: 'lax', secure: 'auto', maxAge: LOGIN_STATE_TTL_MS, path: '/v1/auth' },
        }),
      )
      .forRoutes(OidcController);
  }
}
