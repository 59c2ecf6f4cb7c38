/**
 * What a run is asked to do, typed: the CLI turns its strings into this at
 * the edge (src/cli/runArgs.ts), a program builds it with runConfig(), and
 * run() takes nothing else. Numbers are numbers, durations milliseconds,
 * the frames and tiles parsed, the enums unions.
 *
 * Every value goes through validateRunConfig, from the command line or from
 * code, so a caller gets the same refusals (UsageError, exit 2) in the same
 * words as the command line. What depends on this machine's files (an --in
 * that is missing, a --report under a file) is checked by run() itself,
 * before anything connects.
 */
import { UsageError } from './errors.js';
import { parseFrameSpec, type FrameSpec } from './plan/frames.js';
import { DEFAULT_CHUNK_TARGET_MS, MAX_CHUNK, type ChunkSize } from './plan/chunks.js';
import type { TaskOrder } from './plan/order.js';
import { parseGrid, parseSize, parseTileAlign, type Grid, type Size } from './plan/tiles.js';
import { DEFAULT_KEEP_LOGS } from './report/logs.js';
import { MAX_TIMER_MS } from './text/duration.js';
import { DEFAULT_MAX_PIXELS } from './transfer/complete.js';
import { DEFAULT_GRACE_MS, MAX_STITCH_PIXELS, MIN_STALL_MS } from './tuning.js';

export const DEFAULT_RETRIES = 2;

export interface RunConfig {
  /** The inventory file (YAML); re-read when it changes during the run. */
  inventory: string;
  frames: FrameSpec;
  /** The renderer: a name looked up in the host's PATH, or a path relative to its workdir. */
  exec: string;
  args: readonly string[];
  /** --in and --out: SRC[=DEST], placeholders allowed. */
  ins: readonly string[];
  outs: readonly string[];
  /** Attempts after the first, per task. */
  retries: number;
  /** Per attempt; none when undefined. */
  timeoutMs: number | undefined;
  /** An attempt whose output and output files have not changed this long is stopped and retried elsewhere. */
  stallMs: number | undefined;
  /** How long renderers outlive a lost connection, waiting to be picked up again. */
  graceMs: number;
  /** --tiles, --size and --tile-align: each frame split into cols x rows tiles of an image this size, inner edges on multiples of `align`. */
  tiles: { grid: Grid; size: Size; align?: number | undefined } | undefined;
  /** With tiles: the local file each frame's tiles are stitched into (placeholders allowed). */
  stitch: string | undefined;
  /** With stitch: keep the tile images after a frame is stitched. */
  keepTiles: boolean;
  /** Files written when the run ends, however it ends. */
  report: string | undefined;
  junit: string | undefined;
  html: string | undefined;
  /** Every event as a JSON line, to this file, or `-` for stdout. */
  events: string | undefined;
  /** Where each attempt's output is kept; .distray/logs/<start time> when undefined. */
  logDir: string | undefined;
  /** Run directories kept under .distray/logs (0 keeps all); only without logDir. */
  keepLogs: number;
  /** An image output that declares more pixels is refused without being decoded. */
  maxPixels: number;
  /** The OpenSSH client config; ~/.ssh/config when undefined. */
  sshConfig: string | undefined;
  /** Print every task's command line and copies, connect to nothing. */
  dryRun: boolean;
  /** Render again tasks whose outputs are already complete locally. */
  force: boolean;
  /** Copies of slow, hung or lost tasks on idle slots once the queue is empty. */
  speculate: boolean;
  order: TaskOrder;
  /** The hosts of the inventory to run on (all when undefined), less `exclude`. */
  hosts: readonly string[] | undefined;
  exclude: readonly string[];
  /** Frames per task, or 'auto' (sized to chunkTargetMs); one frame a task when undefined. */
  chunk: ChunkSize | undefined;
  /** With chunk 'auto': about how long a task should take. */
  chunkTargetMs: number;
}

/** What a caller must give; everything else has its default (see runConfig). */
export type RunConfigInput = Pick<RunConfig, 'inventory' | 'frames' | 'exec'> & {
  [K in Exclude<keyof RunConfig, 'inventory' | 'frames' | 'exec'>]?: RunConfig[K] | undefined;
};

/**
 * The option texts as the user gave them, by option name (`stall: '500ms'`),
 * for messages that quote them; a program's values are shown as values.
 */
export type GivenText = Readonly<Partial<Record<string, string>>>;

/** A complete configuration: the defaults applied (here and nowhere else), then validated. */
export function runConfig(input: RunConfigInput, given: GivenText = {}): RunConfig {
  const config: RunConfig = {
    inventory: input.inventory,
    frames: input.frames,
    exec: input.exec,
    args: input.args ?? [],
    ins: input.ins ?? [],
    outs: input.outs ?? [],
    retries: input.retries ?? DEFAULT_RETRIES,
    timeoutMs: input.timeoutMs,
    stallMs: input.stallMs,
    graceMs: input.graceMs ?? DEFAULT_GRACE_MS,
    tiles: input.tiles,
    stitch: input.stitch,
    keepTiles: input.keepTiles ?? false,
    report: input.report,
    junit: input.junit,
    html: input.html,
    events: input.events,
    logDir: input.logDir,
    keepLogs: input.keepLogs ?? DEFAULT_KEEP_LOGS,
    maxPixels: input.maxPixels ?? DEFAULT_MAX_PIXELS,
    sshConfig: input.sshConfig,
    dryRun: input.dryRun ?? false,
    force: input.force ?? false,
    speculate: input.speculate ?? true,
    order: input.order ?? 'sequential',
    hosts: input.hosts,
    exclude: input.exclude ?? [],
    chunk: input.chunk,
    chunkTargetMs: input.chunkTargetMs ?? DEFAULT_CHUNK_TARGET_MS,
  };
  validateRunConfig(config, given);
  return config;
}

/** A duration option's value, as given or in ms. */
const shown = (given: GivenText, option: string, ms: number): string => given[option] ?? `${ms}ms`;

function checkDuration(
  ms: number | undefined,
  option: string,
  given: GivenText,
  { zeroAllowed = false, min = 0 } = {},
): void {
  if (ms === undefined) return;
  const text = shown(given, option, ms);
  if (Number.isNaN(ms)) throw new UsageError(`--${option} "${text}": expected a duration such as 90s, 30m or 2h`);
  if (ms < 0 || (ms === 0 && !zeroAllowed)) throw new UsageError(`--${option} "${text}" must be more than zero`);
  if (!(ms <= MAX_TIMER_MS))
    throw new UsageError(
      `--${option} "${text}" is too long: at most 596h (24 days), the longest delay a Node.js timer can wait`,
    );
  if (ms < min)
    throw new UsageError(
      `--${option} "${text}" is too short: at least ${min / 1000}s (it is how long a renderer may go without output or a change to its outputs; minutes suit most renderers)`,
    );
}

/**
 * Refuses a configuration that cannot run, with the command line's words:
 * values out of range (a negative retry count) and options that do not go
 * together (--chunk with --order preview). The one check of each rule, for
 * the command line and for code alike.
 */
export function validateRunConfig(c: RunConfig, given: GivenText = {}): void {
  const { first, last, step } = c.frames;
  // The frame spec's own rules, in its own words: a spec from code is read as the text it stands for.
  if (given.frames === undefined) parseFrameSpec(`${first},${last},${step}`);
  if (c.logDir === '') throw new UsageError('--log-dir is empty; name a directory (it is created if missing)');
  if (!Number.isSafeInteger(c.retries) || c.retries < 0)
    throw new UsageError(`--retries must be a whole number of at least 0`);
  if (!Number.isInteger(c.keepLogs) || c.keepLogs < 0)
    throw new UsageError("--keep-logs must be a whole number of at least 0 (0 keeps every run's logs)");
  if (!Number.isSafeInteger(c.maxPixels) || c.maxPixels < 1)
    throw new UsageError(
      `--max-pixels must be a whole number of at least 1 (the default is ${DEFAULT_MAX_PIXELS}, 16383x16383)`,
    );
  checkDuration(c.timeoutMs, 'timeout', given);
  checkDuration(c.stallMs, 'stall', given, { min: MIN_STALL_MS });
  checkDuration(c.graceMs, 'grace', given, { zeroAllowed: true });
  checkDuration(c.chunkTargetMs, 'chunk-target', given);
  if (c.tiles) {
    const { grid, size } = c.tiles;
    if (given.tiles === undefined) parseGrid(`${grid.cols}x${grid.rows}`);
    if (given.size === undefined) parseSize(`${size.width}x${size.height}`);
    if (c.tiles.align !== undefined && given['tile-align'] === undefined) parseTileAlign(String(c.tiles.align));
    if (c.stitch !== undefined && size.width * size.height > MAX_STITCH_PIXELS)
      throw new UsageError(
        `--size ${given.size ?? `${size.width}x${size.height}`} is too large to --stitch: the stitcher holds a whole frame in memory (up to 8 bytes a pixel), ` +
          `and at most ${MAX_STITCH_PIXELS} pixels (such as 16383x16383) are allowed; render tiles without --stitch and assemble them with another tool`,
      );
  }
  if (c.order !== 'sequential' && c.order !== 'preview')
    throw new UsageError(`--order "${String(c.order)}": expected sequential or preview`);
  if (
    c.chunk !== undefined &&
    c.chunk !== 'auto' &&
    !(Number.isInteger(c.chunk) && c.chunk >= 1 && c.chunk <= MAX_CHUNK)
  )
    throw new UsageError(
      `--chunk "${String(c.chunk)}": expected a number of frames from 1 to ${MAX_CHUNK}, or auto (sized from the measured time per frame)`,
    );
  if (c.chunk !== undefined && c.order === 'preview')
    throw new UsageError(
      '--order preview and --chunk: a chunk is consecutive frames, preview order spreads them apart; drop one of them',
    );
}

/** The frames as the command line writes them: `1,250`, `10,1,-3`. */
export function formatFrames({ first, last, step }: FrameSpec): string {
  if (first === last) return `${first}`;
  return step === (last < first ? -1 : 1) ? `${first},${last}` : `${first},${last},${step}`;
}
