import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pathsMade, readManifest, recordMade } from '../../../src/clean/manifest.js';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan } from '../../../src/plan/plan.js';

const dir = mkdtempSync(join(tmpdir(), 'distray-made-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('pathsMade', () => {
  it('lists every remote input and output of a run, per host where a path names the host', () => {
    const plan = new Plan({
      frames: parseFrameSpec('1,2'),
      exec: 'ray',
      args: [],
      ins: ['scene.pov', 'tex/%d.png', 'cfg=%{host}.cfg'],
      outs: ['o%d.%{host}.png=anim/o%d.png', 'stats=stats.%{host}'],
      hostNames: ['a', 'b'],
    });
    const made = pathsMade(plan, ['a', 'b']);
    expect(made.get('a')!.sort()).toEqual([
      'a.cfg',
      'o1.a.png',
      'o2.a.png',
      'scene.pov',
      'stats',
      'tex/1.png',
      'tex/2.png',
    ]);
    expect(made.get('b')!.sort()).toEqual([
      'b.cfg',
      'o1.b.png',
      'o2.b.png',
      'scene.pov',
      'stats',
      'tex/1.png',
      'tex/2.png',
    ]);
  });

  it('adds to what earlier runs recorded', async () => {
    const file = join(dir, 'made.json');
    await recordMade([{ host: 'a', workdir: 'w', paths: ['x', 'y'] }], file);
    await recordMade(
      [
        { host: 'a', workdir: 'w', paths: ['y', 'z'] },
        { host: 'b', workdir: 'v', paths: ['q'] },
      ],
      file,
    );
    expect(await readManifest(file)).toEqual({ a: { w: ['x', 'y', 'z'] }, b: { v: ['q'] } });
  });

  it('writes each distinct list of paths once, and the same run twice as one record', async () => {
    const file = join(dir, 'shared', 'made.json');
    const hosts = ['a', 'b', 'c'];
    const plan = new Plan({
      frames: parseFrameSpec('1,3'),
      exec: 'r',
      args: [],
      ins: [],
      outs: ['f%d.png'],
      hostNames: hosts,
    });
    const made = pathsMade(plan, hosts);
    expect(made.get('a')).toBe(made.get('c'));
    const entries = hosts.map((h) => ({ host: h, workdir: 'w', paths: made.get(h)! }));
    await recordMade(entries, file);
    await recordMade(entries, file);
    const records = readdirSync(join(dir, 'shared', 'made.d'));
    expect(records).toHaveLength(1);
    expect(
      (JSON.parse(readFileSync(join(dir, 'shared', 'made.d', records[0]!), 'utf8')) as { lists: string[][] }).lists,
    ).toEqual([['f1.png', 'f2.png', 'f3.png']]);
    expect((await readManifest(file)).b).toEqual({ w: ['f1.png', 'f2.png', 'f3.png'] });
  });
});
