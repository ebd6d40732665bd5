import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal, Roles } from '../auth/decorators.js';
import type { ApiPrincipal } from '../auth/principal.js';
import { ApiZodBody, ApiZodResponse } from '../common/openapi.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { createTrustPolicySchema, trustPolicySchema, type CreateTrustPolicyDto, type TrustPolicyView } from './dto/trust-policy.dto.js';
import { TrustPoliciesService } from './trust-policies.service.js';

/** Which workload tokens (issuer + audience + subject pattern) may be exchanged for which agent identity. */
@ApiTags('trust-policies')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/trust-policies')
export class TrustPoliciesController {
  constructor(private readonly trustPolicies: TrustPoliciesService) {}

  @Get()
  @ApiZodResponse(trustPolicySchema.array())
  list(): Promise<TrustPolicyView[]> {
    return this.trustPolicies.list();
  }

  @Post()
  @ApiZodBody(createTrustPolicySchema)
  @ApiZodResponse(trustPolicySchema, 201)
  create(
    @Body(new ZodValidationPipe(createTrustPolicySchema)) dto: CreateTrustPolicyDto,
    @CurrentPrincipal() principal: ApiPrincipal,
  ): Promise<TrustPolicyView> {
    return this.trustPolicies.create(dto, principal.subject);
  }

  @Get(':name')
  @ApiZodResponse(trustPolicySchema)
  get(@Param('name') name: string): Promise<TrustPolicyView> {
    return this.trustPolicies.get(name);
  }

  @Delete(':name')
  @HttpCode(204)
  remove(@Param('name') name: string, @CurrentPrincipal() principal: ApiPrincipal): Promise<void> {
    return this.trustPolicies.remove(name, principal.subject);
  }
}
