import { Body, Controller, Get, Param, Put, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';
import { ApiZodBody, ApiZodResponse } from '../common/openapi.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { resourceName } from '../common/names.js';
import { CurrentPrincipal, Roles } from '../auth/decorators.js';
import type { ApiPrincipal } from '../auth/principal.js';
import { GatewaysService } from './gateways.service.js';
import { configKeysSchema, gatewayViewSchema, poolViewSchema, putPoolSchema, type ConfigKeys, type GatewayView, type PoolView, type PutPool } from './dto/gateway.dto.js';

@ApiTags('gateways')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1')
export class GatewaysController {
  constructor(private readonly gateways: GatewaysService) {}

  @Get('gateways')
  @ApiQuery({ name: 'pool', required: false })
  @ApiZodResponse(z.array(gatewayViewSchema))
  list(@Query('pool') pool?: string): Promise<GatewayView[]> {
    return this.gateways.listGateways(typeof pool === 'string' ? pool : undefined);
  }

  @Get('gateway-pools')
  @ApiZodResponse(z.array(poolViewSchema))
  pools(): Promise<PoolView[]> {
    return this.gateways.listPools();
  }

  /**
   * The public keys that verify config snapshots (a JWK set): give them to gateways at deploy time as
   * GATEWAY_CONFIG_PUBLIC_KEY (or a file, GATEWAY_CONFIG_PUBLIC_KEY_FILE).
   */
  @Get('gateway-config-keys')
  @ApiZodResponse(configKeysSchema)
  configKeys(): ConfigKeys {
    return this.gateways.configKeys();
  }

  @Get('gateway-pools/:name')
  @ApiZodResponse(poolViewSchema)
  pool(@Param('name') name: string): Promise<PoolView> {
    return this.gateways.getPool(name);
  }

  /** Registers (201) or rotates (200) a pool's X25519 public key. */
  @Put('gateway-pools/:name')
  @ApiZodBody(putPoolSchema)
  @ApiZodResponse(poolViewSchema)
  async putPool(
    @Param('name', new ZodValidationPipe(resourceName, 'name')) name: string,
    @Body(new ZodValidationPipe(putPoolSchema)) body: PutPool,
    @CurrentPrincipal() p: ApiPrincipal,
    @Res({ passthrough: true }) res: Response,
  ): Promise<PoolView> {
    const { pool, created } = await this.gateways.putPool(name, body, p.subject);
    res.status(created ? 201 : 200);
    return pool;
  }
}
