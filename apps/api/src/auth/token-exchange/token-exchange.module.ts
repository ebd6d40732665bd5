import { Module } from '@nestjs/common';
import { IdentitiesModule } from '../../identities/identities.module.js';
import { TrustPoliciesModule } from '../../trust-policies/trust-policies.module.js';
import { TokenExchangeController } from './token-exchange.controller.js';
import { TokenExchangeService } from './token-exchange.service.js';
import { WorkloadJwksService } from './workload-jwks.service.js';

@Module({
  imports: [TrustPoliciesModule, IdentitiesModule],
  controllers: [TokenExchangeController],
  providers: [TokenExchangeService, WorkloadJwksService],
})
export class TokenExchangeModule {}
