import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per Recorder instance (tests run several in one process). */
export class RecorderMetrics {
  readonly registry = new Registry();
  readonly persisted = new Counter({ name: 'recorder_events_persisted_total', help: 'events written to Postgres', registers: [this.registry] });
  readonly duplicates = new Counter({ name: 'recorder_events_duplicate_total', help: 'redelivered or republished events already stored (acked, skipped)', registers: [this.registry] });
  readonly deferred = new Counter({ name: 'recorder_events_deferred_total', help: 'session events redelivered later because a predecessor had not arrived yet', registers: [this.registry] });
  readonly gaps = new Counter({ name: 'recorder_chain_gaps_total', help: 'session events chained across a missing seq after the gap timeout', registers: [this.registry] });
  readonly deadLetters = new Counter({ name: 'recorder_dead_letters_total', help: 'events parked on the dead-letter subject', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly batches = new Counter({ name: 'recorder_batches_total', help: 'committed batches', registers: [this.registry] });
  readonly batchErrors = new Counter({ name: 'recorder_batch_errors_total', help: 'batches that failed and were redelivered', registers: [this.registry] });
  readonly batchSize = new Histogram({ name: 'recorder_batch_size', help: 'events per batch', buckets: [1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 20000], registers: [this.registry] });
  readonly batchSeconds = new Histogram({ name: 'recorder_batch_duration_seconds', help: 'time to write one batch', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [this.registry] });
  readonly lag = new Histogram({ name: 'recorder_lag_seconds', help: 'stream publish to Postgres commit', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry] });
  readonly lastLag = new Gauge({ name: 'recorder_last_lag_seconds', help: 'lag of the newest committed event', registers: [this.registry] });
  readonly checkpoints = new Counter({ name: 'recorder_checkpoints_total', help: 'signed checkpoints written', registers: [this.registry] });
  readonly retentionSessions = new Counter({ name: 'recorder_retention_deleted_sessions_total', help: 'sessions deleted by retention', registers: [this.registry] });

  constructor(defaults = false) {
    if (defaults) collectDefaultMetrics({ register: this.registry });
  }
}
