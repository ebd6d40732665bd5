import { Body, Controller, Header, HttpCode, Post } from '@nestjs/common';
import { ApiConsumes, ApiTags } from '@nestjs/swagger';
import { Public } from '../decorators.js';
import { ApiZodBody, ApiZodResponse } from '../../common/openapi.js';
import { tokenExchangeRequestSchema, tokenExchangeResponseSchema, type TokenExchangeResponse } from './dto/token-exchange.dto.js';
import { TokenExchangeService } from './token-exchange.service.js';

@ApiTags('auth')
@Controller('v1/auth')
export class TokenExchangeController {
  constructor(private readonly exchange: TokenExchangeService) {}

  /** RFC 8693: a workload JWT from a trusted issuer → a short-lived api token. Form-urlencoded or JSON. */
  @Post('token')
  @Public()
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @ApiConsumes('application/x-www-form-urlencoded', 'application/json')
  @ApiZodBody(tokenExchangeRequestSchema)
  @ApiZodResponse(tokenExchangeResponseSchema)
  token(@Body() body: unknown): Promise<TokenExchangeResponse> {
    return this.exchange.exchange(body);
  }
}
