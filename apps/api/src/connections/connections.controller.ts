import { Body, Controller, Delete, Get, Header, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { ApiZodBody, ApiZodResponse } from '../common/openapi.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { CurrentPrincipal, Roles } from '../auth/decorators.js';
import type { ApiPrincipal } from '../auth/principal.js';
import type { GatewayCredential } from '../auth/tokens.service.js';
import { ConnectionsService } from './connections.service.js';
import { ClientAccessService } from './client-access.service.js';
import {
  kubeconfigQuerySchema, sshCertificateBodySchema, sshCertificateResponseSchema, type KubeconfigQuery, type SshCertificateBody, type SshCertificateResponse,
} from './dto/client-access.dto.js';
import {
  connectionUserViewSchema, connectionViewSchema, createConnectionSchema, credentialSchema, credentialsBodySchema, updateConnectionSchema,
  type ConnectionUserView, type ConnectionView, type CreateConnection, type CredentialsBody, type UpdateConnection,
} from './dto/connection.dto.js';

@ApiTags('connections')
@ApiBearerAuth()
@Controller('v1/connections')
export class ConnectionsController {
  constructor(
    private readonly connections: ConnectionsService,
    private readonly access: ClientAccessService,
  ) {}

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

  /** ssh: an OpenSSH user certificate for the caller's public key (principal = the connection; key id = a fresh gateway credential). */
  @Post(':name/ssh-certificate')
  @ApiZodBody(sshCertificateBodySchema)
  @ApiZodResponse(sshCertificateResponseSchema, 201)
  sshCertificate(@Param('name') name: string, @Body(new ZodValidationPipe(sshCertificateBodySchema)) body: SshCertificateBody, @CurrentPrincipal() p: ApiPrincipal): Promise<SshCertificateResponse> {
    return this.access.sshCertificate(name, p, body);
  }

  /** ssh: known_hosts lines for the gateway (its host key, and its host CA as @cert-authority). */
  @Get(':name/ssh-known-hosts')
  @Header('Content-Type', 'text/plain; charset=utf-8')
  @ApiProduces('text/plain')
  sshKnownHosts(@Param('name') name: string, @CurrentPrincipal() p: ApiPrincipal): Promise<string> {
    return this.access.knownHosts(name, p);
  }

  /** kubernetes: a kubeconfig (YAML) for the gateway's HTTPS listener; exec plugin `portcullis kube-credential` or `?token=static`. */
  @Get(':name/kubeconfig')
  @Header('Content-Type', 'application/yaml; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  @ApiProduces('application/yaml')
  @ApiQuery({ name: 'token', required: false, enum: ['exec', 'static'] })
  @ApiQuery({ name: 'namespace', required: false })
  @ApiQuery({ name: 'mode', required: false, enum: ['wait', 'fail-fast'] })
  kubeconfig(@Param('name') name: string, @Query(new ZodValidationPipe(kubeconfigQuerySchema, 'query')) q: KubeconfigQuery, @CurrentPrincipal() p: ApiPrincipal): Promise<string> {
    return this.access.kubeconfig(name, p, q);
  }
}
