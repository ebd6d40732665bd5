import { loadRecorderEnv } from './env.js';
import { Recorder } from './recorder.js';

const env = loadRecorderEnv();
const recorder = new Recorder(env, { defaultMetrics: true });

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  recorder.logger.info({ signal }, 'shutting down');
  try {
    await recorder.stop();
    process.exit(0);
  } catch (err) {
    recorder.logger.error({ err }, 'shutdown failed');
    process.exit(1);
  }
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

recorder.start().catch((err: unknown) => {
  recorder.logger.fatal({ err }, 'recorder failed to start');
  process.exit(1);
});
