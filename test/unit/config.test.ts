import { describe, expect, it } from 'vitest';
import { parseRunArgs } from '../../src/cli/runArgs.js';
import { runConfig, validateRunConfig, type RunConfigInput } from '../../src/config.js';
import { DEFAULT_GRACE_MS } from '../../src/tuning.js';
import { UsageError } from '../../src/errors.js';

const base: RunConfigInput = { inventory: 'farm.yaml', frames: { first: 1, last: 10, step: 1 }, exec: 'povray' };

describe('runConfig', () => {
  it('applies the defaults, here and nowhere else', () => {
    expect(runConfig(base)).toMatchObject({
      args: [],
      ins: [],
      outs: [],
      retries: 2,
      timeoutMs: undefined,
      graceMs: DEFAULT_GRACE_MS,
      keepLogs: 20,
      maxPixels: 16383 * 16383,
      order: 'sequential',
      speculate: true,
      dryRun: false,
      chunk: undefined,
      chunkTargetMs: 120_000,
      exclude: [],
    });
  });

  it('is what the command line makes of the same words', () => {
    const fromCli = parseRunArgs({
      inventory: 'farm.yaml',
      frames: '1,10',
      exec: 'povray',
      args: [],
      retries: '5',
      timeout: '2m',
      hosts: 'a, b,',
      chunk: 'auto',
      chunkTarget: '30s',
    });
    const fromCode = runConfig({
      ...base,
      retries: 5,
      timeoutMs: 120_000,
      hosts: ['a', 'b'],
      chunk: 'auto',
      chunkTargetMs: 30_000,
      speculate: true,
      dryRun: false,
      force: false,
      keepTiles: false,
    });
    expect(fromCli).toEqual(fromCode);
  });

  // Typed, but still wrong: refused in the command line's words, as a usage error (exit 2).
  it.each<[Partial<RunConfigInput>, RegExp]>([
    [{ retries: -1 }, /--retries must be a whole number of at least 0/],
    [{ retries: 1.5 }, /--retries must be a whole number of at least 0/],
    [{ keepLogs: -3 }, /--keep-logs must be a whole number of at least 0/],
    [{ maxPixels: 0 }, /--max-pixels must be a whole number of at least 1/],
    [{ frames: { first: 1, last: 10, step: 0 } }, /frames "1,10,0": STEP must not be 0/],
    [{ frames: { first: 1, last: 10, step: -1 } }, /frames "1,10,-1": STEP -1 walks away from LAST 10/],
    [{ frames: { first: 0.5, last: 10, step: 1 } }, /frames "0.5,10,1" is not FIRST\[,LAST\[,STEP\]\] in decimal/],
    [{ timeoutMs: 0 }, /--timeout "0ms" must be more than zero/],
    [{ timeoutMs: Number.NaN }, /--timeout "NaNms": expected a duration/],
    [{ graceMs: -1 }, /--grace "-1ms" must be more than zero/],
    [{ stallMs: 999 }, /--stall "999ms" is too short: at least 1s/],
    [{ timeoutMs: 2 ** 31 }, /--timeout "2147483648ms" is too long/],
    [{ tiles: { grid: { cols: 0, rows: 2 }, size: { width: 64, height: 64 } } }, /--tiles "0x2": expected CxR/],
    [
      { tiles: { grid: { cols: 2, rows: 2 }, size: { width: 20000, height: 20000 } }, stitch: 'f%d.png' },
      /--size 20000x20000 is too large to --stitch/,
    ],
    [{ order: 'random' as 'preview' }, /--order "random": expected sequential or preview/],
    [{ chunk: 0 }, /--chunk "0": expected a number of frames from 1 to 10000/],
    [{ chunk: 4, order: 'preview' }, /--order preview and --chunk/],
    [{ logDir: '' }, /--log-dir is empty/],
  ])('refuses %j', (over, message) => {
    expect(() => runConfig({ ...base, ...over })).toThrow(message);
    expect(() => runConfig({ ...base, ...over })).toThrow(UsageError);
  });

  it('refuses a configuration built by hand, not through runConfig, with the same words', () => {
    const config = { ...runConfig(base), retries: -1 };
    expect(() => validateRunConfig(config)).toThrow(/--retries must be a whole number of at least 0/);
  });
});

describe('tiles.align (--tile-align)', () => {
  const tiles = (align: number) => ({ grid: { cols: 2, rows: 2 }, size: { width: 64, height: 64 }, align });

  it.each([0, 2.5, -16, Number.NaN])('refuses %s from code in the words of --tile-align', (align) => {
    expect(() => runConfig({ ...base, tiles: tiles(align) })).toThrow(
      /^--tile-align ".*": expected a whole number of pixels from 1/,
    );
  });

  it('keeps a whole number', () => {
    expect(runConfig({ ...base, tiles: tiles(16) }).tiles?.align).toBe(16);
  });

  it('is refused on the command line without --tiles, and reaches the configuration with it', () => {
    const words = { inventory: 'farm.yaml', frames: '1', exec: 'r', args: [] };
    expect(() => parseRunArgs({ ...words, tileAlign: '16' })).toThrow(/--tile-align places the edges of --tiles/);
    expect(parseRunArgs({ ...words, tileAlign: '16', tiles: '2x2', size: '64x64' }).tiles?.align).toBe(16);
  });
});
