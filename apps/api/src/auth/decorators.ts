import { createParamDecorator, SetMetadata, type ExecutionContext } from '@nestjs/common';
import type { Role } from '@portcullis/protocol';
import type { ApiPrincipal } from './principal.js';

export const IS_PUBLIC = 'portcullis:public';
export const REQUIRED_ROLES = 'portcullis:roles';

/** No token needed (health, metrics, login, token exchange). */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC, true);

/** The caller needs one of these roles; admin passes every check. Without it, any valid token will do. */
export const Roles = (...roles: Role[]): MethodDecorator & ClassDecorator => SetMetadata(REQUIRED_ROLES, roles);

/** The authenticated principal (the guard has run). */
export const CurrentPrincipal = createParamDecorator((_data: unknown, ctx: ExecutionContext): ApiPrincipal => {
  const req = ctx.switchToHttp().getRequest<{ principal?: ApiPrincipal }>();
  if (!req.principal) throw new Error('CurrentPrincipal used on a route without authentication');
  return req.principal;
});
