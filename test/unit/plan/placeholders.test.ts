import { describe, expect, it } from 'vitest';
import {
  HOST_NAMES,
  TASK_NAMES,
  TILE_NAMES,
  expand,
  formatFrame,
  parseTemplate,
} from '../../../src/plan/placeholders.js';

const plain = new Set<string>([...TASK_NAMES, ...HOST_NAMES]);
const tiled = new Set<string>([...TASK_NAMES, ...HOST_NAMES, ...TILE_NAMES]);
const e = (t: string, vars: Record<string, number | string>, allowed = tiled): string =>
  expand(parseTemplate(t, 'test', allowed), vars);

describe('placeholders', () => {
  it.each([
    ['%d', 7, '7'],
    ['%04d', 7, '0007'],
    ['%04d', -7, '-007'],
    ['%02d', 123, '123'],
    ['f_%03d.png', 12, 'f_012.png'],
    ['100%%', 1, '100%'],
    ['%%d', 1, '%d'],
    ['%{frame*2}', 4, '8'],
    ['%{frame/3}', 4, '1.333333'],
    ['%{frame/8}', 4, '0.5'],
    ['%{(frame+1)*(frame-1)}', 3, '8'],
    ['%{-frame}', 3, '-3'],
    ['%{frame - 0.1*10}', 3, '2'],
    ['%{1/3*3}', 0, '1'],
    ['%{0.1+0.2}', 0, '0.3'],
    ['no placeholders', 0, 'no placeholders'],
  ])('%s with frame %d -> %s', (t, frame, out) => {
    expect(e(t, { frame })).toBe(out);
  });

  it('evaluates tile names and the host', () => {
    const vars = {
      frame: 1,
      tile: 2,
      tiles: 6,
      x0: 10,
      y0: 0,
      x1: 20,
      y1: 33,
      w: 10,
      h: 33,
      width: 31,
      height: 67,
      host: 'gpu-box',
    };
    expect(e('+SR%{y0+1} +ER%{y1}', vars)).toBe('+SR1 +ER33');
    expect(e('border_min_y=%{(height-y1+0.5)/height}', vars)).toBe('border_min_y=0.514925');
    expect(e('out.%{host}.png', vars)).toBe('out.gpu-box.png');
  });

  it.each([
    ['%{nope}', /unknown name "nope"/],
    ['%{tile}', /tile names need --tiles/],
    ['%{frame/0}', /division by zero/],
    ['%{frame', /no closing/],
    ['%{}', /empty expression/],
    ['%{1+}', /ends too early/],
    ['%{(1+2}', /missing "\)"/],
    ['%{1 2}', /unexpected "2"/],
    ['%{host*2}', /text/],
    ['%s', /not a placeholder/],
    ['50%', /not a placeholder/],
    ['%1d', /not a placeholder/],
  ])('%s is refused', (t, message) => {
    expect(() => e(t, { frame: 1, host: 'h' }, plain)).toThrow(message);
  });

  it.each([
    ['f%4d.png', /"%4d" is not a placeholder \(did you mean "%04d"\?/],
    ['f%04D.png', /"%04D" is not a placeholder \(did you mean "%04d"\?/],
    ['f%04.png', /"%04\." is not a placeholder \(did you mean "%04d"\?/],
    ['f%i', /"%i" is not a placeholder \(did you mean "%d"\?/],
  ])('%s quotes the sequence as typed and suggests the placeholder meant', (t, message) => {
    expect(() => e(t, { frame: 1 }, plain)).toThrow(message);
  });

  it('names the argument and the frame of a division by zero', () => {
    const t = parseTemplate('x=%{1/(frame-3)}', 'argument 2', plain);
    expect(expand(t, { frame: 1 })).toBe('x=-0.5');
    expect(() => expand(t, { frame: 3 })).toThrow(/argument 2 "x=%\{1\/\(frame-3\)\}": .*division by zero for frame 3/);
  });

  it('pads like printf', () => {
    expect(formatFrame(0, 4)).toBe('0000');
    expect(formatFrame(-12345, 4)).toBe('-12345');
  });
});
