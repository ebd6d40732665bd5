import { createHash, timingSafeEqual } from 'node:crypto';
import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Role } from '@portcullis/protocol';
import { ApiConfig } from '../config/env.js';
import { ForbiddenError, UnauthorizedError } from '../common/errors.js';
import { IS_PUBLIC, REQUIRED_ROLES } from './decorators.js';
import { consoleToken } from './oidc/console-session.js';
import { BOOTSTRAP_SUBJECT, hasRole, type ApiPrincipal } from './principal.js';
import { TokensService } from './tokens.service.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Global guard: every route needs a valid Bearer token unless marked @Public(); @Roles(...) narrows it.
 * The bootstrap token (when configured) acts as identity `bootstrap` with role admin.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly bootstrapDigest: Buffer | null;

  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: TokensService,
    config: ApiConfig,
  ) {
    const t = config.env.PORTCULLIS_BOOTSTRAP_TOKEN;
    this.bootstrapDigest = t ? digest(t) : null;
  }

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (ctx.getType() !== 'http') return true;
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets)) return true;
    const req = ctx.switchToHttp().getRequest<{ headers: Record<string, string | string[] | undefined>; principal?: ApiPrincipal }>();
    // the web console's cookie, on the console's own requests only (console-session.ts); a Bearer header wins
    const cookieToken = req.headers.authorization ? undefined : consoleToken(req.headers);
    const principal = await this.authenticate(cookieToken ? `Bearer ${cookieToken}` : req.headers.authorization);
    req.principal = principal;
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(REQUIRED_ROLES, targets);
    if (roles?.length && !hasRole(principal, ...roles)) {
      throw new ForbiddenError(`this route needs role ${roles.join(' or ')}; ${principal.subject} has [${principal.roles.join(', ')}]`);
    }
    return true;
  }

  async authenticate(header: string | string[] | undefined): Promise<ApiPrincipal> {
    if (typeof header !== 'string' || !header) throw new UnauthorizedError('missing Authorization: Bearer <token>', 'missing_token');
    const m = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
    if (!m) throw new UnauthorizedError('Authorization header must be "Bearer <token>"', 'invalid_token');
    const token = m[1];
    if (this.bootstrapDigest && timingSafeEqual(digest(token), this.bootstrapDigest)) {
      return { identityId: null, subject: BOOTSTRAP_SUBJECT, kind: 'bootstrap', groups: [], roles: ['admin'], tokenId: null };
    }
    return this.tokens.verifyApiToken(token);
  }
}
