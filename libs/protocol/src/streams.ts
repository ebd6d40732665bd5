/**
 * The JetStream streams and the config KV bucket, as every app creates them when they are missing
 * (infra/nats/ creates the same with three replicas before the apps start; test/infra.test.ts holds
 * its files to these settings). Whoever starts first creates them; a later app finds them and never
 * changes an existing stream's configuration.
 *
 * This lib does not depend on @nats-io/*: the helpers take the app's JetStream manager / Kvm by the
 * few methods they call, so the rule lives here and the sockets stay in the apps.
 */
import type { NatsNames } from './subjects.js';

/** Publishers set a message id per event; a redelivery within this window is dropped by the server. */
export const DUPLICATE_WINDOW_NS = 120 * 1_000_000_000;

/** A stream's configuration (the JetStream API's field names and values). */
export interface StreamSettings {
  name: string;
  subjects: string[];
  storage: 'file';
  retention: 'limits';
  discard: 'old';
  duplicate_window: number;
}

function fileStream(name: string, subjects: string[]): StreamSettings {
  return { name, subjects, storage: 'file', retention: 'limits', discard: 'old', duplicate_window: DUPLICATE_WINDOW_NS };
}

/** Session and control-plane events (gateways, api and approvals publish; recorders consume). */
export function eventStreamSettings(names: NatsNames): StreamSettings {
  return fileStream(names.eventStream, [names.eventsAll]);
}

/** Events the recorder could not verify or parse, parked for an operator. */
export function deadLetterStreamSettings(names: NatsNames): StreamSettings {
  return fileStream(names.deadLetterStream, [names.deadLetter]);
}

/**
 * The config bucket: one signed snapshot per pool, replaced whole by the api. Gateways read only the
 * newest; the history is for an operator (`nats kv history`).
 */
export const CONFIG_BUCKET_SETTINGS = { history: 5 } as const;

/** What ensureStream calls on a JetStream manager (`jetstreamManager(nc)` has these). */
export interface StreamAdmin {
  streams: {
    info(name: string): Promise<unknown>;
    add(config: StreamSettings): Promise<unknown>;
  };
}

/** Creates the stream unless it exists (an existing stream's configuration is left as it is). */
export async function ensureStream(jsm: StreamAdmin, settings: StreamSettings): Promise<void> {
  try {
    await jsm.streams.info(settings.name);
    return;
  } catch {
    // missing: create it below
  }
  try {
    await jsm.streams.add(settings);
  } catch (err) {
    // another app (or a second instance) created it in between
    await jsm.streams.info(settings.name).catch(() => {
      throw err;
    });
  }
}

/** What ensureBucket calls on a KV manager (`new Kvm(nc)` has these). */
export interface BucketAdmin<KV> {
  create(name: string, options: typeof CONFIG_BUCKET_SETTINGS): Promise<KV>;
  open(name: string): Promise<KV>;
}

/**
 * Opens the config bucket, creating it with CONFIG_BUCKET_SETTINGS if it is missing. Creating fails
 * where the app may only read it (the gateway's NATS user) or when another app won the race: then
 * it is opened.
 */
export async function ensureBucket<KV>(kvm: BucketAdmin<KV>, name: string): Promise<KV> {
  try {
    return await kvm.create(name, CONFIG_BUCKET_SETTINGS);
  } catch {
    return await kvm.open(name);
  }
}
