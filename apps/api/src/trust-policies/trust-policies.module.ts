import { Module } from '@nestjs/common';
import { TrustPoliciesController } from './trust-policies.controller.js';
import { TrustPoliciesService } from './trust-policies.service.js';

@Module({
  controllers: [TrustPoliciesController],
  providers: [TrustPoliciesService],
  exports: [TrustPoliciesService],
})
export class TrustPoliciesModule {}
