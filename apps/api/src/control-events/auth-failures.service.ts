import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Request } from 'express';
import { decodeJwt } from 'jose';
import { AuthFailureAggregator, type AuthFailedData, type AuthFailure } from '@portcullis/protocol';
import type { ApiPrincipal } from '../auth/principal.js';
import { ControlEventsService } from './control-events.service.js';

const TOKEN_EXCHANGE_PATH = '/v1/auth/token';
const SUMMARY_EVERY_MS = 10_000;

/** The unverified `sub` (and `iss`) of a JWT, for the record only: who the caller claimed to be. */
function claimedBy(jwt: unknown, withIssuer = false): string | null {
  if (typeof jwt !== 'string' || !jwt) return null;
  try {
    const p = decodeJwt(jwt);
    if (typeof p.sub !== 'string') return null;
    return withIssuer && typeof p.iss === 'string' ? `${p.sub} (${p.iss})` : p.sub;
  } catch {
    return null;
  }
}

/**
 * Refused api requests as `auth.failed` audit events: every 401 and 403, and every refused token exchange
 * (client address, claimed identity, reason), aggregated per (address, identity, reason, route) and minute so a
 * flood of them cannot flood the trail (libs/protocol auth-failures.ts).
 */
@Injectable()
export class AuthFailuresService implements OnApplicationShutdown {
  private readonly aggregator = new AuthFailureAggregator();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly events: ControlEventsService) {
    this.timer = setInterval(() => this.emit(this.aggregator.drain(Date.now())), SUMMARY_EVERY_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
    this.emit(this.aggregator.drain(Date.now(), true));
  }

  /** Called with every error response: records the ones that are refused authentication or authorization. */
  httpRefused(req: Request, status: number, code: string, message: string): void {
    const exchange = req.path === TOKEN_EXCHANGE_PATH && req.method === 'POST';
    if (status !== 401 && status !== 403 && !(exchange && status >= 400 && status < 500)) return;
    const principal = (req as Request & { principal?: ApiPrincipal }).principal;
    const bearer = /^Bearer[ ]+(\S+)/i.exec(req.headers.authorization ?? '')?.[1];
    const body = req.body as Record<string, unknown> | undefined;
    this.report({
      surface: exchange ? 'token-exchange' : 'api',
      // an IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d; record the address it has
      source: (req.ip ?? req.socket?.remoteAddress)?.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '') ?? null,
      identity: principal?.subject ?? (exchange ? claimedBy(body?.subject_token, true) : claimedBy(bearer)),
      reason: code,
      target: `${req.method} ${req.path}`,
      detail: message,
    });
  }

  report(f: AuthFailure): void {
    this.emit(this.aggregator.record(f, Date.now()));
  }

  private emit(list: AuthFailedData[]): void {
    // record() never throws: a failed publish is queued and retried there
    for (const data of list) void this.events.record({ type: 'auth.failed', actor: data.identity ?? 'anonymous', data: { ...data } });
  }
}
