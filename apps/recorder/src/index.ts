export { Recorder, type RecorderOptions } from './recorder.js';
export { recorderEnvSchema, loadRecorderEnv, parseRecorderEnv, type RecorderEnv } from './env.js';
export { checkpointKey, checkpointPayload, type CheckpointKey, type CheckpointHeads } from './checkpoints.js';
export { DEAD_LETTER_HEADERS, type BatchReport } from './event-consumer.js';
