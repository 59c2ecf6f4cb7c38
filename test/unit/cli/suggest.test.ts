import { describe, expect, it } from 'vitest';
import { misspeltOptionWarnings } from '../../../src/cli/suggest.js';

const run = (line: string): string[] => misspeltOptionWarnings(line.split(' '));

describe('misspeltOptionWarnings', () => {
  it.each([
    ['farm.yaml 1,9 ./ray %d --ouput x%d.png', '--out'],
    ['farm.yaml 1,9 ./ray %d --retry 3', '--retries'],
    ['farm.yaml 1,9 ./ray %d --output=x%d.png', '--out'],
    ['farm.yaml 1,9 ./ray %d --timout 90s', '--timeout'],
    ['farm.yaml 1,9 ./ray %d --Force', '--force'],
  ])('%s warns, naming %s', (line, meant) => {
    const [warning, ...more] = run(line);
    expect(more).toEqual([]);
    expect(warning).toContain(`did you mean ${meant}?`);
    expect(warning).toMatch(/passed to the renderer/);
    expect(warning).toMatch(/after "--"/);
  });

  it.each([
    'farm.yaml 1,9 ./ray %d --out x%d.png --retries 3',
    'farm.yaml 1,9 -- ./ray --ouput x%d.png --retry 3',
    'farm.yaml 1,9 blender -b s.blend --python-expr x --render-frame %d --engine CYCLES --threads 4',
    'farm.yaml 1,9 ./ray --in --ouput',
  ])('%s is quiet', (line) => {
    expect(run(line)).toEqual([]);
  });
});
