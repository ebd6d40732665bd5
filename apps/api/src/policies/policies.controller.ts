import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';
import { ApiZodBody, ApiZodResponse, jsonSchemaOf } from '../common/openapi.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { resourceName } from '../common/names.js';
import { CurrentPrincipal, Roles } from '../auth/decorators.js';
import type { ApiPrincipal } from '../auth/principal.js';
import { PoliciesService } from './policies.service.js';
import { PolicyBodyPipe, type ValidPolicyBody } from './policy-body.pipe.js';
import {
  evaluateBodySchema, evaluateResponseSchema, policyDocumentDocSchema, policyVersionViewSchema, policyViewSchema,
  type EvaluateBody, type PolicyVersionView, type PolicyView,
} from './dto/policy.dto.js';

const versionQuery = z.coerce.number().int().min(1).optional();
const PolicyDocBody = () => ApiBody({ schema: jsonSchemaOf(policyDocumentDocSchema) as never, description: 'policy document (JSON, or YAML with Content-Type application/yaml)' });

@ApiTags('policies')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/policies')
export class PoliciesController {
  constructor(private readonly policies: PoliciesService) {}

  @Get()
  @ApiZodResponse(z.array(policyViewSchema))
  list(): Promise<PolicyView[]> {
    return this.policies.list();
  }

  @Post()
  @ApiConsumes('application/json', 'application/yaml')
  @PolicyDocBody()
  @ApiZodResponse(policyViewSchema, 201)
  create(@Body(PolicyBodyPipe) body: ValidPolicyBody, @CurrentPrincipal() p: ApiPrincipal): Promise<PolicyView> {
    return this.policies.create(body, p.subject);
  }

  @Get(':name')
  @ApiQuery({ name: 'version', required: false, type: Number })
  @ApiZodResponse(policyViewSchema)
  get(@Param('name') name: string, @Query('version', new ZodValidationPipe(versionQuery, 'version')) version?: number): Promise<PolicyView> {
    return this.policies.get(name, version);
  }

  @Get(':name/versions')
  @ApiZodResponse(z.array(policyVersionViewSchema))
  versions(@Param('name') name: string): Promise<PolicyVersionView[]> {
    return this.policies.versions(name);
  }

  /** Creates (201) or replaces as a new version (200); the document's name must equal the route's. */
  @Put(':name')
  @ApiConsumes('application/json', 'application/yaml')
  @PolicyDocBody()
  @ApiZodResponse(policyViewSchema)
  async put(
    @Param('name', new ZodValidationPipe(resourceName, 'name')) name: string,
    @Body(PolicyBodyPipe) body: ValidPolicyBody,
    @CurrentPrincipal() p: ApiPrincipal,
    @Res({ passthrough: true }) res: Response,
  ): Promise<PolicyView> {
    const { policy, created } = await this.policies.put(name, body, p.subject);
    res.status(created ? 201 : 200);
    return policy;
  }

  @Delete(':name')
  @HttpCode(204)
  remove(@Param('name') name: string, @CurrentPrincipal() p: ApiPrincipal): Promise<void> {
    return this.policies.remove(name, p.subject);
  }

  @Post(':name/evaluate')
  @HttpCode(200)
  @ApiZodBody(evaluateBodySchema)
  @ApiZodResponse(evaluateResponseSchema)
  evaluate(@Param('name') name: string, @Body(new ZodValidationPipe(evaluateBodySchema)) body: EvaluateBody): Promise<unknown> {
    return this.policies.evaluate(name, body);
  }
}
