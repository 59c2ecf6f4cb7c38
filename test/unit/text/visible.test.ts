import { describe, expect, it } from 'vitest';
import { visible } from '../../../src/text/visible.js';

describe('visible', () => {
  it('shows control characters as \\xNN, keeping newlines and tabs', () => {
    expect(visible('\x1b]0;title\x07\x1b[2J\rover\x7f\x9b2J')).toBe('\\x1b]0;title\\x07\\x1b[2J\\x0dover\\x7f\\x9b2J');
    expect(visible('line 1\n\tline 2 é ✓')).toBe('line 1\n\tline 2 é ✓');
    // A right-to-left override would show "gpj.exe" for "exe.jpg" and reorder the rest of the line.
    expect(visible('frame \u202Egpj.exe')).toBe('frame \\u202egpj.exe');
    // Every bidirectional mark: the Arabic letter mark (U+061C) as well as the others.
    expect(visible('a\u061Cb\u200Ec\u200Fd\u202Ae\u2066f\u2069')).toBe(
      'a\\u061cb\\u200ec\\u200fd\\u202ae\\u2066f\\u2069',
    );
  });
});
