/**
 * distray as a library: `import { run, runConfig } from 'distray'`. The
 * same run as `distray run`, given a typed configuration instead of words,
 * an AbortSignal to stop it, and the events --events writes as they happen.
 * See docs/api.md. Everything exported here is the package's public
 * surface (its `exports`); the rest of src/ is not.
 */
export { run, RunCrashError, type RunOptions } from './run.js';
export {
  DEFAULT_GRACE_MS,
  DEFAULT_RETRIES,
  formatFrames,
  runConfig,
  validateRunConfig,
  type GivenText,
  type RunConfig,
  type RunConfigInput,
} from './config.js';
export { parseFrameSpec, type FrameSpec } from './plan/frames.js';
export type { Grid, Size } from './plan/tiles.js';
export type { ChunkSize } from './plan/chunks.js';
export type { TaskOrder } from './plan/order.js';
export { loadInventory, loadInventoryAsync, type LoadOptions } from './inventory/load.js';
export type { Endpoint, HostConfig } from './inventory/types.js';
export type { EndSummary, HostSummary, RunSummary, TaskSummary } from './fold/types.js';
/** An event of a run: what `onEvent` gets, and each line of --events is (with its version `v`). */
export type { StreamEvent as RunEvent } from './fold/runEvents.js';
export { EVENTS_VERSION } from './fold/runEvents.js';
export type { Progress } from './views/progress.js';
export {
  ConnectionError,
  DistrayError,
  InventoryError,
  StitchError,
  TransferError,
  UsageError,
  type ConnectionFailure,
  type ErrorCode,
} from './errors.js';
export { EXIT } from './outcome.js';
