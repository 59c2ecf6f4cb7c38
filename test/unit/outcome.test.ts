import { describe, expect, it } from 'vitest';
import { InventoryError, LocalFault, StitchError, TransferError, UsageError } from '../../src/errors.js';
import { exitCode, type Outcome } from '../../src/outcome.js';

describe('exitCode, the one place statuses are decided', () => {
  it.each<[string, Outcome, number]>([
    ['a usage error', { kind: 'error', error: new UsageError('x') }, 2],
    ['an inventory error', { kind: 'error', error: new InventoryError('x') }, 2],
    ['a transfer error', { kind: 'error', error: new TransferError('x') }, 1],
    ['an unexpected error', { kind: 'error', error: new TypeError('x') }, 1],
    ['a run that did everything', { kind: 'run', interrupted: false, noHostUsable: false, failed: false }, 0],
    ['a run with failures', { kind: 'run', interrupted: false, noHostUsable: false, failed: true }, 1],
    ['a run with no usable host', { kind: 'run', interrupted: false, noHostUsable: true, failed: true }, 3],
    ['an interrupted run, whatever else', { kind: 'run', interrupted: true, noHostUsable: true, failed: true }, 130],
    ['check: every host usable', { kind: 'hosts', usable: 3, total: 3 }, 0],
    ['check: some hosts usable', { kind: 'hosts', usable: 1, total: 3 }, 1],
    ['check: no host usable', { kind: 'hosts', usable: 0, total: 3 }, 3],
    ['a stitch error', { kind: 'error', error: new StitchError('x') }, 1],
    ['a local fault', { kind: 'error', error: new LocalFault('/logs/a.log', 'ENOSPC', 'x') }, 4],
    [
      'a run stopped by a local fault, whatever else',
      { kind: 'run', localFault: true, interrupted: true, noHostUsable: true, failed: true },
      4,
    ],
  ])('%s -> %i', (_name, outcome, code) => {
    expect(exitCode(outcome)).toBe(code);
  });
});
