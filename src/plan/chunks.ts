import { UsageError } from '../errors.js';

/** With --chunk: consecutive frames of the frame spec, `first`, `first + step`, ... (`count` of them). */
export interface Chunk {
  readonly first: number;
  readonly count: number;
  readonly step: number;
}

export type ChunkSize = number | 'auto';

/** Frames in one chunk at most: a chunk's outputs go on one command line to the host shell. */
export const MAX_CHUNK = 10_000;

/** `--chunk-target`'s default: about two minutes a task. */
export const DEFAULT_CHUNK_TARGET_MS = 120_000;

export function parseChunk(text: string | undefined): ChunkSize | undefined {
  if (text === undefined) return undefined;
  if (text === 'auto') return 'auto';
  if (!/^[0-9]+$/.test(text) || Number(text) < 1 || Number(text) > MAX_CHUNK) {
    throw new UsageError(
      `--chunk "${text}": expected a number of frames from 1 to ${MAX_CHUNK}, or auto (sized from the measured time per frame)`,
    );
  }
  return Number(text);
}

export function lastOf(c: Chunk): number {
  return c.first + (c.count - 1) * c.step;
}

export function framesOfChunk(c: Chunk): number[] {
  const frames = new Array<number>(c.count);
  for (let i = 0; i < c.count; i++) frames[i] = c.first + i * c.step;
  return frames;
}

/** "frames 10-18", or "frame 7" for a chunk of one. */
export function chunkLabel(c: Chunk): string {
  return c.count === 1 ? `frame ${c.first}` : `frames ${c.first}-${lastOf(c)}`;
}

/**
 * A chunk cut where its frames change from done to not done: each run
 * keeps one state. Both the missing frames and the ones present can be
 * scattered (a renderer that skipped a frame, an image that does not
 * decode), so a chunk may become several.
 */
export function runsOf(
  c: Chunk,
  done: (frame: number) => boolean,
): Array<{ first: number; count: number; done: boolean }> {
  const runs: Array<{ first: number; count: number; done: boolean }> = [];
  for (let i = 0; i < c.count; i++) {
    const frame = c.first + i * c.step;
    const d = done(frame);
    const last = runs.at(-1);
    if (last && last.done === d) last.count++;
    else runs.push({ first: frame, count: 1, done: d });
  }
  return runs;
}

/** Frames as runs, "10-12, 15, 17-19" (a run's frames `step` apart); the first few runs of many, then how many frames in all. */
export function describeFrames(frames: readonly number[], step: number): string {
  const runs: Array<[number, number]> = [];
  for (const f of frames) {
    const last = runs.at(-1);
    if (last && f === last[1] + step) last[1] = f;
    else runs.push([f, f]);
  }
  const shown = runs.slice(0, 6).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`));
  const noun = frames.length === 1 ? 'frame' : 'frames';
  return runs.length > shown.length
    ? `${noun} ${shown.join(', ')}, ... (${frames.length} in all)`
    : `${noun} ${shown.join(', ')}`;
}
