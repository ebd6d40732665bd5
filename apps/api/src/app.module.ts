import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { LoggerModule } from 'nestjs-pino';
import { AllExceptionsFilter } from './common/http-exception.filter.js';
import { ConfigModule } from './config/config.module.js';
import { ApiConfig } from './config/env.js';
import { PrismaModule } from './prisma/prisma.module.js';
import { NatsModule } from './nats/nats.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { HealthModule } from './health/health.module.js';
import { ControlEventsModule } from './control-events/control-events.module.js';
import { SigningKeysModule } from './auth/signing-keys.module.js';
import { ConfigPublisherModule } from './config-publisher/config-publisher.module.js';
import { PoolKeysModule } from './pool-keys/pool-keys.module.js';
import { AuthModule } from './auth/auth.module.js';
import { IdentitiesModule } from './identities/identities.module.js';
import { GroupsModule } from './groups/groups.module.js';
import { ConnectionsModule } from './connections/connections.module.js';
import { PoliciesModule } from './policies/policies.module.js';
import { GatewaysModule } from './gateways/gateways.module.js';
import { pinoOptions } from './common/logging.js';
import { TrustPoliciesModule } from './trust-policies/trust-policies.module.js';
import { TokenExchangeModule } from './auth/token-exchange/token-exchange.module.js';
import { OidcModule } from './auth/oidc/oidc.module.js';
import { ApprovalsModule } from './approvals/approvals.module.js';
import { AccessRequestsModule } from './access-requests/access-requests.module.js';
import { SessionsModule } from './sessions/sessions.module.js';
import { AuditModule } from './audit/audit.module.js';

/**
 * The api. Infrastructure modules are global (config, prisma, nats, metrics, control events, signing keys,
 * config publisher, auth), so a domain module only imports other domain modules it needs.
 * Other domains (approvals, access requests, sessions, audit, auth flows) add one line each to `imports`.
 */
@Module({
  imports: [
    PrismaModule,
    NatsModule,
    MetricsModule,
    ControlEventsModule,
    SigningKeysModule,
    PoolKeysModule,
    ConfigPublisherModule,
    AuthModule,
    HealthModule,
    IdentitiesModule,
    GroupsModule,
    ConnectionsModule,
    PoliciesModule,
    GatewaysModule,
    TrustPoliciesModule,
    TokenExchangeModule,
    OidcModule,
    ApprovalsModule,
    AccessRequestsModule,
    SessionsModule,
    AuditModule,
  ],
  providers: [{ provide: APP_FILTER, useClass: AllExceptionsFilter }],
})
export class AppModule {
  /** The root module for a validated config (env is read once, in createApiApp/main). */
  static forRoot(config: ApiConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [ConfigModule.forRoot(config), LoggerModule.forRoot(pinoOptions(config.env.LOG_LEVEL))],
    };
  }
}
