import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { natsConnectOptions, natsNames, redactNatsUrl, type NatsNames } from '@portcullis/protocol';
import { ApiConfig } from '../config/env.js';
import { ServiceUnavailableError } from '../common/errors.js';

/** One NATS connection per api process, with JetStream handles and the agreed names for this prefix. */
@Injectable()
export class NatsService implements OnApplicationShutdown {
  private readonly logger = new Logger(NatsService.name);
  private conn: NatsConnection | null = null;
  private jsClient: JetStreamClient | null = null;
  private jsm: JetStreamManager | null = null;
  readonly names: NatsNames;

  constructor(private readonly config: ApiConfig) {
    this.names = natsNames(config.env.NATS_PREFIX);
  }

  /** Connects (called by NatsModule's factory before anything uses NATS). */
  async start(): Promise<void> {
    try {
      this.conn = await connect({
        ...natsConnectOptions(this.config.env.NATS_URL),
        name: 'portcullis-api',
        maxReconnectAttempts: -1,
        reconnectTimeWait: 1000,
      });
    } catch (err) {
      throw new ServiceUnavailableError(`cannot connect to NATS at ${redactNatsUrl(this.config.env.NATS_URL)}`, 'nats_unavailable', { cause: err });
    }
    this.jsClient = jetstream(this.conn);
    this.jsm = await jetstreamManager(this.conn);
    void this.conn.closed().then((err) => {
      if (err) this.logger.error(`NATS connection closed: ${err.message}`);
    });
  }

  get nc(): NatsConnection {
    if (!this.conn) throw new ServiceUnavailableError('NATS is not connected', 'nats_unavailable');
    return this.conn;
  }

  get js(): JetStreamClient {
    if (!this.jsClient) throw new ServiceUnavailableError('NATS is not connected', 'nats_unavailable');
    return this.jsClient;
  }

  get manager(): JetStreamManager {
    if (!this.jsm) throw new ServiceUnavailableError('NATS is not connected', 'nats_unavailable');
    return this.jsm;
  }

  isConnected(): boolean {
    return !!this.conn && !this.conn.isClosed() && !this.conn.isDraining();
  }

  async onApplicationShutdown(): Promise<void> {
    const c = this.conn;
    this.conn = null;
    if (c && !c.isClosed()) {
      await c.drain().catch((err: unknown) => this.logger.warn(`NATS drain failed: ${(err as Error).message}`));
    }
  }
}
