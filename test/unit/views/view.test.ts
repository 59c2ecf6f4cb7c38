import { describe, expect, it } from 'vitest';
import { chooseView } from '../../../src/views/view.js';

describe('chooseView', () => {
  it.each([
    [{ plain: false, quiet: false, isTTY: true, env: { TERM: 'xterm-256color' } }, 'live'],
    [{ plain: false, quiet: false, isTTY: true, env: { TERM: 'dumb' } }, 'plain'],
    [{ plain: false, quiet: false, isTTY: false, env: { TERM: 'xterm' } }, 'plain'],
    [{ plain: true, quiet: false, isTTY: true, env: {} }, 'plain'],
    [{ plain: false, quiet: true, isTTY: true, env: { TERM: 'xterm' } }, 'quiet'],
    [{ plain: true, quiet: true, isTTY: false, env: {} }, 'quiet'],
  ])('%j -> %s', (o, view) => {
    expect(chooseView(o)).toBe(view);
  });
});
