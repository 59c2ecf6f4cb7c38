import { runConfig, type GivenText, type RunConfig } from '../config.js';
import { UsageError } from '../errors.js';
import { parseChunk } from '../plan/chunks.js';
import { parseFrameSpec } from '../plan/frames.js';
import { parseOrder } from '../plan/order.js';
import { parseGrid, parseSize, parseTileAlign } from '../plan/tiles.js';
import { parseDuration } from '../text/duration.js';

/** `run`'s words as the command line gives them: the positionals and each option's text. */
export interface RunArgs {
  inventory: string;
  frames: string;
  exec: string;
  args: string[];
  ins?: string[] | undefined;
  outs?: string[] | undefined;
  retries?: string | undefined;
  timeout?: string | undefined;
  grace?: string | undefined;
  stall?: string | undefined;
  tiles?: string | undefined;
  size?: string | undefined;
  tileAlign?: string | undefined;
  stitch?: string | undefined;
  report?: string | undefined;
  events?: string | undefined;
  junit?: string | undefined;
  html?: string | undefined;
  logDir?: string | undefined;
  keepLogs?: string | undefined;
  maxPixels?: string | undefined;
  sshConfig?: string | undefined;
  dryRun?: boolean | undefined;
  force?: boolean | undefined;
  keepTiles?: boolean | undefined;
  speculate?: boolean | undefined;
  order?: string | undefined;
  hosts?: string | undefined;
  exclude?: string | undefined;
  chunk?: string | undefined;
  chunkTarget?: string | undefined;
}

/** A comma-separated list of host names (--hosts, --exclude), blanks dropped. */
function names(list: string): string[] {
  return list
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
}

function wholeNumber(text: string | undefined, refusal: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(refusal);
  return Number(text);
}

/**
 * The edge: `run`'s strings turned into a typed RunConfig, each refused in
 * words that quote it and name its option. The values then go through the
 * same validation as a program's (runConfig).
 */
export function parseRunArgs(a: RunArgs): RunConfig {
  const retries = wholeNumber(a.retries, `--retries "${a.retries}": expected a whole number`);
  const keepLogs = wholeNumber(
    a.keepLogs,
    `--keep-logs "${a.keepLogs}": expected a whole number (0 keeps every run's logs)`,
  );
  if (a.maxPixels !== undefined && !/^[1-9]\d*$/.test(a.maxPixels))
    throw new UsageError(`--max-pixels "${a.maxPixels}": expected a whole number of pixels, such as 536870912`);
  const frames = parseFrameSpec(a.frames);
  const timeoutMs = a.timeout === undefined ? undefined : parseDuration(a.timeout);
  const stallMs = a.stall === undefined ? undefined : parseDuration(a.stall, '--stall');
  if (a.tiles && !a.size) throw new UsageError('--tiles needs --size WxH, the full image size');
  if (a.size && !a.tiles) {
    throw new UsageError(
      '--size is distray\'s option and only means something with --tiles; if it is meant for the renderer, put the renderer\'s words after "--" (distray run INV FRAMES [options] -- EXEC ARGS...)',
    );
  }
  if (a.tileAlign !== undefined && !a.tiles)
    throw new UsageError(
      '--tile-align places the edges of --tiles; add --tiles CxR and --size WxH, or drop --tile-align',
    );
  const tiles =
    a.tiles && a.size
      ? {
          grid: parseGrid(a.tiles),
          size: parseSize(a.size),
          align: a.tileAlign === undefined ? undefined : parseTileAlign(a.tileAlign),
        }
      : undefined;
  const order = parseOrder(a.order);
  const chunk = parseChunk(a.chunk);
  // A program may leave the default target with any chunk; a user who writes --chunk-target expects it to act.
  if (a.chunkTarget !== undefined && chunk !== 'auto')
    throw new UsageError('--chunk-target sizes chunks of --chunk auto; add --chunk auto, or drop --chunk-target');
  const chunkTargetMs = a.chunkTarget === undefined ? undefined : parseDuration(a.chunkTarget, '--chunk-target');
  const graceMs = a.grace === undefined ? undefined : parseDuration(a.grace, '--grace', true);
  const given: GivenText = {
    frames: a.frames,
    stall: a.stall,
    tiles: a.tiles,
    size: a.size,
    'tile-align': a.tileAlign,
    'chunk-target': a.chunkTarget,
  };
  return runConfig(
    {
      inventory: a.inventory,
      frames,
      exec: a.exec,
      args: a.args,
      ins: a.ins,
      outs: a.outs,
      retries,
      timeoutMs,
      stallMs,
      graceMs,
      tiles,
      stitch: a.stitch,
      keepTiles: a.keepTiles,
      report: a.report,
      junit: a.junit,
      html: a.html,
      events: a.events,
      logDir: a.logDir,
      keepLogs,
      maxPixels: a.maxPixels === undefined ? undefined : Number(a.maxPixels),
      sshConfig: a.sshConfig,
      dryRun: a.dryRun,
      force: a.force,
      speculate: a.speculate,
      order,
      hosts: a.hosts === undefined ? undefined : names(a.hosts),
      exclude: a.exclude === undefined ? undefined : names(a.exclude),
      chunk,
      chunkTargetMs,
    },
    given,
  );
}
