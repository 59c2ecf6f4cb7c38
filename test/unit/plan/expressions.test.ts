import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/errors.js';
import { ExpressionError, evaluate, formatValue, namesOf, parseExpression } from '../../../src/plan/expression.js';
import {
  CHUNK_NAMES,
  HOST_NAMES,
  TASK_NAMES,
  TILE_NAMES,
  expand,
  formatFrame,
  parseTemplate,
  usesAny,
} from '../../../src/plan/placeholders.js';

// The edges of `%{EXPR}` and of the template parser that placeholders.test.ts leaves open: each case pins
// one rule (precedence, associativity, number forms, the names read, each message's words), so a change
// to any of them fails here (found by `npm run mutate`).

const plain = new Set<string>([...TASK_NAMES, ...HOST_NAMES]);
const tiled = new Set<string>([...TASK_NAMES, ...HOST_NAMES, ...TILE_NAMES]);
const calc = (text: string, vars: Record<string, number | string> = {}): number | string =>
  evaluate(parseExpression(text), vars);

describe('expressions', () => {
  it.each([
    ['2+3*4', 14],
    ['2*3+4', 10],
    ['(2+3)*4', 20],
    ['10-2-3', 5],
    ['8/2/2', 2],
    ['2*(3+4)*2', 28],
    ['2-3+4', 3],
    ['12/3*2', 8],
    ['-(-5)', 5],
    ['+5', 5],
    ['- 2 * 3', -6],
    ['3--2', 5],
    ['.5+1', 1.5],
    ['.25*4', 1],
    ['2.', 2],
    ['2.25*4', 9],
    ['  7  ', 7],
    ['((7))', 7],
    ['x_1*2', 6],
    ['_a+B9', 5],
  ])('%s is %d', (text, value) => {
    expect(calc(text, { x_1: 3, _a: 1, B9: 4 })).toBe(value);
  });

  it.each([
    ['', 'empty expression'],
    ['   ', 'empty expression'],
    ['1 $ 2', 'unexpected "$ 2"'],
    ['1)', 'unexpected ")"'],
    ['*2', 'unexpected "*"'],
    ['(', 'expression ends too early'],
    ['(1', 'missing ")"'],
    ['1 x', 'unexpected "x"'],
    ['1 2.5', 'unexpected "2.5"'],
    ['-', 'expression ends too early'],
  ])('"%s" is refused: %s', (text, message) => {
    let error: unknown;
    try {
      calc(text, { x: 1 });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ExpressionError);
    expect((error as Error).message).toBe(message);
  });

  it('evaluates names, refusing one not given and text in arithmetic', () => {
    expect(calc('host', { host: 'h1' })).toBe('h1');
    expect(() => calc('w+1', {})).toThrow(new ExpressionError('unknown name "w"'));
    expect(() => calc('-host', { host: 'h' })).toThrow(
      new ExpressionError('"host" is text and cannot be used in arithmetic'),
    );
    expect(() => calc('1+host', { host: 'h' })).toThrow(/^"host" is text/);
    expect(() => calc('host*1', { host: 'h' })).toThrow(/^"host" is text/);
    expect(() => calc('4/(2-2)')).toThrow(new ExpressionError('division by zero'));
    expect(calc('0/4')).toBe(0);
  });

  it('names every name read, under signs and on both sides', () => {
    expect([...namesOf(parseExpression('-(a+b)*c/-d - 2'))].sort()).toEqual(['a', 'b', 'c', 'd']);
    expect([...namesOf(parseExpression('3'))]).toEqual([]);
  });

  it.each([
    [7, '7'],
    [-0, '0'],
    [-0.0000001, '0'],
    [0.25, '0.25'],
    [-1.5, '-1.5'],
    [2 / 3, '0.666667'],
    [1.0000004, '1'],
    [Number.MAX_SAFE_INTEGER, '9007199254740991'],
    [-Number.MAX_SAFE_INTEGER, '-9007199254740991'],
    ['text', 'text'],
  ])('formats %s as %s', (v, text) => {
    expect(formatValue(v)).toBe(text);
  });

  it('refuses a result past 2^53, either sign', () => {
    for (const v of [Number.MAX_SAFE_INTEGER + 1, -(Number.MAX_SAFE_INTEGER + 1), 1e21, Infinity])
      expect(() => formatValue(v)).toThrow(/is too large \(at most 9007199254740991\)/);
  });
});

describe('templates', () => {
  it('parses text, frames and expressions into parts, with the names they read', () => {
    const t = parseTemplate('a%db%{-tile+w}c%%', 'argument 1', tiled);
    expect(t).toMatchObject({ source: 'a%db%{-tile+w}c%%', where: 'argument 1' });
    expect(t.parts.map((p) => p.kind)).toEqual(['text', 'frame', 'text', 'expr', 'text']);
    expect(t.parts[0]).toEqual({ kind: 'text', text: 'a' });
    expect(t.parts[4]).toEqual({ kind: 'text', text: 'c%' });
    expect([...t.names].sort()).toEqual(['frame', 'tile', 'w']);
    expect(usesAny(t, ['w'])).toBe(true);
    expect(usesAny(t, ['host', 'x0'])).toBe(false);
    expect(parseTemplate('%{host}', 'x', plain).names).toEqual(new Set(['host']));
    expect(parseTemplate('plain', 'x', plain).names).toEqual(new Set());
    expect(parseTemplate('', 'x', plain).parts).toEqual([]);
  });

  it.each([
    ['%%%d', 7, '%7'],
    ['%d%d', 7, '77'],
    ['%05d', -7, '-0007'],
    ['%{frame}x%{frame*2}', 4, '4x8'],
    ['%{frame}%d', 4, '44'],
    ['[%{ frame }]', 4, '[4]'],
  ])('%s with frame %d -> %s', (t, frame, out) => {
    expect(expand(parseTemplate(t, 'test', plain), { frame })).toBe(out);
  });

  it('pads like printf, the sign in the width', () => {
    expect(formatFrame(-5, 3)).toBe('-05');
    expect(formatFrame(-5, 0)).toBe('-5');
    expect(formatFrame(5, 0)).toBe('5');
    expect(formatFrame(5, 1)).toBe('5');
    expect(formatFrame(5, 2)).toBe('05');
  });

  it.each([
    ['%{nope}', 'test "%{nope}": unknown name "nope" in %{nope}; known names: frame, host'],
    ['%{x0}', 'test "%{x0}": unknown name "x0" in %{x0} (tile names need --tiles); known names: frame, host'],
    [
      '%{last-first}',
      'test "%{last-first}": unknown name "last" in %{last-first} (first, last and count need --chunk); known names: frame, host',
    ],
    [
      '%{count}',
      'test "%{count}": unknown name "count" in %{count} (first, last and count need --chunk); known names: frame, host',
    ],
    ['a%{1+', 'test "a%{1+": "%{" has no closing "}"'],
    ['%{1+}', 'test "%{1+}": in %{1+}: expression ends too early'],
    ['%q', 'test "%q": "%q" is not a placeholder; placeholders are %d, %0Nd, %{EXPR}, and %% for a literal %'],
    ['x%', 'test "x%": "%" is not a placeholder; placeholders are %d, %0Nd, %{EXPR}, and %% for a literal %'],
    [
      '%5',
      'test "%5": "%5" is not a placeholder (did you mean "%05d"? distray pads with zeros only); placeholders are %d, %0Nd, %{EXPR}, and %% for a literal %',
    ],
    ['%-5d', 'test "%-5d": "%-5d" is not a placeholder; placeholders are %d, %0Nd, %{EXPR}, and %% for a literal %'],
    ['%5s', 'test "%5s": "%5s" is not a placeholder; placeholders are %d, %0Nd, %{EXPR}, and %% for a literal %'],
    ['%.3f', 'test "%.3f": "%.3f" is not a placeholder; placeholders are %d, %0Nd, %{EXPR}, and %% for a literal %'],
    [
      '%u',
      'test "%u": "%u" is not a placeholder (did you mean "%d"?); placeholders are %d, %0Nd, %{EXPR}, and %% for a literal %',
    ],
    [
      '%003u',
      'test "%003u": "%003u" is not a placeholder (did you mean "%03d"? distray pads with zeros only); placeholders are %d, %0Nd, %{EXPR}, and %% for a literal %',
    ],
    ['%#x', 'test "%#x": "%#x" is not a placeholder; placeholders are %d, %0Nd, %{EXPR}, and %% for a literal %'],
    [
      '%+ 4.2e',
      'test "%+ 4.2e": "%+ 4.2e" is not a placeholder; placeholders are %d, %0Nd, %{EXPR}, and %% for a literal %',
    ],
  ])('%s is refused with the whole message', (t, message) => {
    expect(() => parseTemplate(t, 'test', plain)).toThrow(new UsageError(message));
  });

  it('quotes one character after a lone %, suggests the width typed, and makes no empty text parts', () => {
    expect(() => parseTemplate('%qz', 'test', plain)).toThrow(/^test "%qz": "%q" is not a placeholder;/);
    expect(() => parseTemplate('%15d', 'test', plain)).toThrow(/"%15d" is not a placeholder \(did you mean "%015d"\?/);
    expect(parseTemplate('%d%{frame}', 'test', plain).parts.map((p) => p.kind)).toEqual(['frame', 'expr']);
    expect(parseTemplate('%{frame}%d', 'test', plain).parts.map((p) => p.kind)).toEqual(['expr', 'frame']);
  });

  it('a chunk name is known with --chunk', () => {
    const t = parseTemplate('%{last-first+1}', 'test', new Set([...plain, ...CHUNK_NAMES]));
    expect(expand(t, { frame: 1, first: 1, last: 8, count: 8 })).toBe('8');
  });

  it('an expression that fails for one task names the argument, the frame and its tile', () => {
    const t = parseTemplate('%{w/(tile-2)}', '--out', tiled);
    expect(() => expand(t, { frame: 3, tile: 2, w: 5 })).toThrow(
      new UsageError(
        '--out "%{w/(tile-2)}": %{w/(tile-2)}: division by zero for frame 3 tile 2; change the expression so it holds for every frame',
      ),
    );
    expect(() => expand(parseTemplate('%{w}', '--out', tiled), { frame: 3 })).toThrow(
      new UsageError(
        '--out "%{w}": %{w}: unknown name "w" for frame 3; change the expression so it holds for every frame',
      ),
    );
    expect(() => expand(parseTemplate('%{frame*1e0}', '--out', tiled), { frame: 3 })).toThrow(/unexpected "e0"/);
  });
});
