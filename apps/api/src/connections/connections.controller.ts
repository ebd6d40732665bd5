import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { ApiZodBody, ApiZodResponse } from '../common/openapi.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { CurrentPrincipal, Roles } from '../auth/decorators.js';
import type { ApiPrincipal } from '../auth/principal.js';
import type { GatewayCredential } from '../auth/tokens.service.js';
import { ConnectionsService } from './connections.service.js';
import {
  connectionUserViewSchema, connectionViewSchema, createConnectionSchema, credentialSchema, credentialsBodySchema, updateConnectionSchema,
  type ConnectionUserView, type ConnectionView, type CreateConnection, type CredentialsBody, type UpdateConnection,
} from './dto/connection.dto.js';

@ApiTags('connections')
@ApiBearerAuth()
@Controller('v1/connections')
export class ConnectionsController {
  constructor(private readonly connections: ConnectionsService) {}

  /** Admins: every connection. Others: the connections they may use (no target details). */
  @Get()
  @ApiZodResponse(z.union([z.array(connectionViewSchema), z.array(connectionUserViewSchema)]))
  list(@CurrentPrincipal() p: ApiPrincipal): Promise<ConnectionView[] | ConnectionUserView[]> {
    return this.connections.list(p);
  }

  @Post()
  @Roles('admin')
  @ApiZodBody(createConnectionSchema)
  @ApiZodResponse(connectionViewSchema, 201)
  create(@Body(new ZodValidationPipe(createConnectionSchema)) body: CreateConnection, @CurrentPrincipal() p: ApiPrincipal): Promise<ConnectionView> {
    return this.connections.create(body, p.subject);
  }

  @Get(':name')
  @ApiZodResponse(z.union([connectionViewSchema, connectionUserViewSchema]))
  get(@Param('name') name: string, @CurrentPrincipal() p: ApiPrincipal): Promise<ConnectionView | ConnectionUserView> {
    return this.connections.get(name, p);
  }

  @Patch(':name')
  @Roles('admin')
  @ApiZodBody(updateConnectionSchema)
  @ApiZodResponse(connectionViewSchema)
  update(@Param('name') name: string, @Body(new ZodValidationPipe(updateConnectionSchema)) body: UpdateConnection, @CurrentPrincipal() p: ApiPrincipal): Promise<ConnectionView> {
    return this.connections.update(name, body, p.subject);
  }

  @Delete(':name')
  @Roles('admin')
  @HttpCode(204)
  remove(@Param('name') name: string, @CurrentPrincipal() p: ApiPrincipal): Promise<void> {
    return this.connections.remove(name, p.subject);
  }

  /** A minutes-long gateway credential for the caller, bound to this connection. */
  @Post(':name/credentials')
  @ApiZodBody(credentialsBodySchema)
  @ApiZodResponse(credentialSchema, 201)
  credentials(@Param('name') name: string, @Body(new ZodValidationPipe(credentialsBodySchema)) body: CredentialsBody, @CurrentPrincipal() p: ApiPrincipal): Promise<GatewayCredential> {
    return this.connections.credentials(name, p, body);
  }
}
