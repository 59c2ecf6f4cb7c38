import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { MAX_DURATION_MS, parseDuration } from '../../src/run.js';

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['90', 90_000],
    ['30m', 1_800_000],
    ['2h', 7_200_000],
    ['250ms', 250],
    ['596h', 596 * 3_600_000],
    [`${MAX_DURATION_MS}ms`, MAX_DURATION_MS],
  ])('reads %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  // Past 2^31-1 ms a Node.js timer fires at once: every attempt would time out at its start.
  it.each(['597h', `${MAX_DURATION_MS + 1}ms`, '100000000h', '99999999999999999999999999h'])('refuses %s, longer than a timer can wait', (text) => {
    expect(() => parseDuration(text)).toThrow(UsageError);
    expect(() => parseDuration(text, '--grace', true)).toThrow(/--grace "[^"]+" is too long: at most 596h/);
  });

  it('refuses zero unless allowed', () => {
    expect(() => parseDuration('0s')).toThrow(/more than zero/);
    expect(parseDuration('0s', '--grace', true)).toBe(0);
  });
});
