import type { AddressInfo } from 'node:net';
import type { ActiveConfig } from '../config/config-store.js';
import type { ProtocolModule, ProtocolName, SessionCore } from './session-core.types.js';

/** What a module's own listener does for the core while its sessions are not LiveSessions of core.sessions. */
export interface ModuleListener {
  stop(): Promise<void>;
  configChanged(config: ActiveConfig): void;
  recordingLost(): void;
  readonly liveSessions: number;
}

/**
 * A protocol module whose listener keeps its own sessions (ssh/, kubernetes/ as first landed): the
 * core's config changes, a lost event stream and the live-session count go to that listener. Such a
 * module only builds and starts its listener in `listen`.
 */
export abstract class ListenerModule<L extends ModuleListener> implements ProtocolModule {
  abstract readonly protocol: ProtocolName;
  listener: L | null = null;

  abstract listen(core: SessionCore): Promise<AddressInfo>;

  async close(): Promise<void> {
    await this.listener?.stop();
  }

  configChanged(config: ActiveConfig): void {
    this.listener?.configChanged(config);
  }

  recordingLost(): void {
    this.listener?.recordingLost();
  }

  liveSessions(): number {
    return this.listener?.liveSessions ?? 0;
  }
}
