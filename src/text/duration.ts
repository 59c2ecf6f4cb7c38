import { UsageError } from '../errors.js';

/** The longest delay a Node timer can wait (2^31-1 ms, about 24.8 days); past it a timer fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `90s`, `30m`, `2h`, `500ms`; a bare number is seconds. */
export function parseDuration(text: string, option = '--timeout', zeroAllowed = false): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${option} "${text}": expected a duration such as 90s, 30m or 2h`);
  const n = Number(m[1]);
  const ms = n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  if (ms <= 0 && !zeroAllowed) throw new UsageError(`${option} "${text}" must be more than zero`);
  if (!(ms <= MAX_TIMER_MS)) {
    throw new UsageError(
      `${option} "${text}" is too long: at most 596h (24 days), the longest delay a Node.js timer can wait`,
    );
  }
  return ms;
}
