import { describe, expect, it } from 'vitest';
import { framesOf, MAX_FRAMES, parseFrameSpec } from '../../../src/plan/frames.js';

describe('parseFrameSpec', () => {
  it.each([
    ['7', [7]],
    ['0,3', [0, 1, 2, 3]],
    ['3,0', [3, 2, 1, 0]],
    ['0,10,5', [0, 5, 10]],
    ['0,9,5', [0, 5]],
    ['10,0,-4', [10, 6, 2]],
    ['-2,2', [-2, -1, 0, 1, 2]],
    ['-5', [-5]],
    ['-1,-3', [-1, -2, -3]],
  ])('%s -> %j', (spec, frames) => {
    expect(framesOf(parseFrameSpec(spec))).toEqual(frames);
  });

  it.each([
    ['0,10,0', /STEP must not be 0/],
    ['0,10,-1', /walks away/],
    ['10,0,2', /walks away/],
    ['a', /FIRST\[,LAST\[,STEP\]\]/],
    ['1.5', /FIRST/],
    ['1,2,3,4', /FIRST/],
    ['', /FIRST/],
    ['0,99999999', /at most/],
  ])('%s is refused', (spec, message) => {
    expect(() => parseFrameSpec(spec)).toThrow(message);
  });
});

describe('parseFrameSpec, its edges', () => {
  it('reads a single frame, a range of one, spaces around, and a STEP that overshoots LAST', () => {
    expect(parseFrameSpec(' 7 ')).toEqual({ first: 7, last: 7, step: 1 });
    expect(parseFrameSpec('3,3')).toEqual({ first: 3, last: 3, step: 1 });
    expect(parseFrameSpec('3,3,-2')).toEqual({ first: 3, last: 3, step: -2 });
    expect(parseFrameSpec('5,1')).toEqual({ first: 5, last: 1, step: -1 });
    expect(framesOf(parseFrameSpec('3,3,-2'))).toEqual([3]);
    expect(framesOf(parseFrameSpec('1,10,4'))).toEqual([1, 5, 9]);
    expect(framesOf(parseFrameSpec('10,1,-4'))).toEqual([10, 6, 2]);
  });

  it('says what it expects, and what to do about a STEP that walks away', () => {
    expect(() => parseFrameSpec('1;2')).toThrow(
      'frames "1;2" is not FIRST[,LAST[,STEP]] in decimal (for example 1,250 or 0,100,5)',
    );
    expect(() => parseFrameSpec('0,10,0')).toThrow('frames "0,10,0": STEP must not be 0');
    expect(() => parseFrameSpec('0,10,-3')).toThrow(
      'frames "0,10,-3": STEP -3 walks away from LAST 10; use 3 or swap FIRST and LAST',
    );
    expect(() => parseFrameSpec('10,0,3')).toThrow('frames "10,0,3": STEP 3 walks away from LAST 0; use -3');
  });

  it('allows exactly MAX_FRAMES frames, and numbers of at most 15 digits', () => {
    expect(MAX_FRAMES).toBe(1_000_000);
    expect(parseFrameSpec('0,999999')).toEqual({ first: 0, last: 999_999, step: 1 });
    expect(parseFrameSpec('1,2000000,2')).toEqual({ first: 1, last: 2_000_000, step: 2 });
    expect(() => parseFrameSpec('0,1000000')).toThrow(
      'frames "0,1000000" makes 1000001 frames; at most 1000000 are allowed in one run',
    );
    expect(() => parseFrameSpec('1,2000001,2')).toThrow('makes 1000001 frames');
    expect(parseFrameSpec('999999999999999')).toEqual({
      first: 999_999_999_999_999,
      last: 999_999_999_999_999,
      step: 1,
    });
    for (const spec of ['99999999999999999', '0,99999999999999999', '0,10,99999999999999999'])
      expect(() => parseFrameSpec(spec)).toThrow(`frames "${spec}": numbers must be integers of at most 15 digits`);
  });
});
