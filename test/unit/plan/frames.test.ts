import { describe, expect, it } from 'vitest';
import { framesOf, parseFrameSpec } from '../../../src/plan/frames.js';

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
