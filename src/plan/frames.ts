import { UsageError } from '../errors.js';

export interface FrameSpec {
  first: number;
  last: number;
  step: number;
}

const FRAME_SPEC = /^(-?\d+)(?:,(-?\d+)(?:,(-?\d+))?)?$/;
/** A guard against typos like 0,10000000000 that would plan billions of tasks. */
export const MAX_FRAMES = 1_000_000;

/** Parses `FIRST[,LAST[,STEP]]` as the contract defines it. */
export function parseFrameSpec(text: string): FrameSpec {
  const m = FRAME_SPEC.exec(text.trim());
  if (!m) {
    throw new UsageError(`frames "${text}" is not FIRST[,LAST[,STEP]] in decimal (for example 1,250 or 0,100,5)`);
  }
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  const step = m[3] === undefined ? (last < first ? -1 : 1) : Number(m[3]);
  if (![first, last, step].every(Number.isSafeInteger)) {
    throw new UsageError(`frames "${text}": numbers must be integers of at most 15 digits`);
  }
  if (step === 0) throw new UsageError(`frames "${text}": STEP must not be 0`);
  if ((last - first) * step < 0) {
    throw new UsageError(
      `frames "${text}": STEP ${step} walks away from LAST ${last}; use ${-step} or swap FIRST and LAST`,
    );
  }
  const count = Math.floor((last - first) / step) + 1;
  if (count > MAX_FRAMES) {
    throw new UsageError(`frames "${text}" makes ${count} frames; at most ${MAX_FRAMES} are allowed in one run`);
  }
  return { first, last, step };
}

export function framesOf(spec: FrameSpec): number[] {
  const frames: number[] = [];
  for (let f = spec.first; spec.step > 0 ? f <= spec.last : f >= spec.last; f += spec.step) frames.push(f);
  return frames;
}
