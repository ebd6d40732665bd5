import { randomUUID } from 'node:crypto';
import { AuthFailureAggregator, encodeEventBatch, type AuthFailedData, type AuthFailure, type UnsignedWireEvent } from '@portcullis/protocol';
import type { Logger } from '../logger.js';
import type { EventPublisher } from './event-publisher.js';

const SUMMARY_EVERY_MS = 10_000;

/**
 * Refused gateway logins as `auth.failed` control-plane events on the event stream (the recorder
 * chains and exports them with the api's): client address, claimed identity, reason — aggregated per
 * (address, identity, reason, connection) and minute (libs/protocol auth-failures.ts), so a flood of bad
 * passwords costs the trail a few events, not one each. Best effort: the refusal itself never waits
 * for this, and an event that cannot be published is logged.
 */
export class AuthFailureRecorder {
  private readonly aggregator = new AuthFailureAggregator();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly deps: {
      gatewayId: string;
      logger: Logger;
      publisher(): EventPublisher | null;
      /** the event key of the current config (null: no config yet, nothing can be signed) */
      eventKey(): Buffer | null;
    },
  ) {
    this.timer = setInterval(() => this.emit(this.aggregator.drain(Date.now())), SUMMARY_EVERY_MS);
    this.timer.unref();
  }

  report(f: Omit<AuthFailure, 'surface'>, connection: string | null): void {
    this.emit(this.aggregator.record({ ...f, surface: 'gateway' }, Date.now()), connection);
  }

  /** Gateway stopping: the summaries of the open window go out now. */
  stop(): void {
    clearInterval(this.timer);
    this.emit(this.aggregator.drain(Date.now(), true));
  }

  private emit(list: AuthFailedData[], connection: string | null = null): void {
    if (!list.length) return;
    const publisher = this.deps.publisher();
    const key = this.deps.eventKey();
    if (!publisher || !key) {
      this.deps.logger.warn({ events: list.length }, 'auth.failed events not recorded: no event stream or no config');
      return;
    }
    const time = new Date().toISOString();
    const events: UnsignedWireEvent[] = list.map((data) => ({
      id: randomUUID(),
      sessionId: null,
      seq: 0,
      time,
      type: 'auth.failed',
      identity: data.identity,
      connection: data.summary ? null : connection,
      gateway: this.deps.gatewayId,
      data: { ...data },
    }));
    const { body, sig } = encodeEventBatch(events, key);
    publisher.sendBatch(Buffer.from(body), sig, events.length, (err) => {
      if (err) this.deps.logger.warn({ err: err.message, events: events.length }, 'auth.failed events not recorded');
    });
  }
}
