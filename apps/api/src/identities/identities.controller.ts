import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { ApiZodBody, ApiZodResponse } from '../common/openapi.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { CurrentPrincipal, Roles } from '../auth/decorators.js';
import type { ApiPrincipal } from '../auth/principal.js';
import { IdentitiesService } from './identities.service.js';
import { createIdentitySchema, identityViewSchema, updateIdentitySchema, type CreateIdentity, type IdentityView, type UpdateIdentity } from './dto/identity.dto.js';

@ApiTags('identities')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/identities')
export class IdentitiesController {
  constructor(private readonly identities: IdentitiesService) {}

  @Get()
  @ApiZodResponse(z.array(identityViewSchema))
  list(): Promise<IdentityView[]> {
    return this.identities.list();
  }

  @Post()
  @ApiZodBody(createIdentitySchema)
  @ApiZodResponse(identityViewSchema, 201)
  create(@Body(new ZodValidationPipe(createIdentitySchema)) body: CreateIdentity, @CurrentPrincipal() p: ApiPrincipal): Promise<IdentityView> {
    return this.identities.create(body, p.subject);
  }

  @Get(':id')
  @ApiZodResponse(identityViewSchema)
  get(@Param('id') id: string): Promise<IdentityView> {
    return this.identities.get(id);
  }

  @Patch(':id')
  @ApiZodBody(updateIdentitySchema)
  @ApiZodResponse(identityViewSchema)
  update(@Param('id') id: string, @Body(new ZodValidationPipe(updateIdentitySchema)) body: UpdateIdentity, @CurrentPrincipal() p: ApiPrincipal): Promise<IdentityView> {
    return this.identities.update(id, body, p.subject);
  }

  @Delete(':id')
  @HttpCode(204)
  remove(@Param('id') id: string, @CurrentPrincipal() p: ApiPrincipal): Promise<void> {
    return this.identities.remove(id, p.subject);
  }
}
