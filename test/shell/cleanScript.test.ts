import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLEAN_SCRIPT } from '../../src/clean/clean.js';
import { SHELLS } from '../helpers/shells.js';

// clean's script on a POSIX host: names found there are arguments, reported as NUL-ended records, never lines.

let dir: string;
let workdir: string;
const planted = '.x.distray-1.part\nprecious.blend';

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'distray-clean-script-'));
  workdir = join(dir, 'wd');
  mkdirSync(join(workdir, 'sub'), { recursive: true });
  mkdirSync(join(dir, 'outside'));
  writeFileSync(join(workdir, planted), 'planted');
  writeFileSync(join(workdir, 'precious.blend'), 'keep');
  writeFileSync(join(workdir, 'sub', '.y.distray-2.part\n'), 'half');
  writeFileSync(join(workdir, 'sub', 'mine'), 'keep');
  // Below a linked directory nothing is found, nor removed when recorded.
  writeFileSync(join(dir, 'outside', '.z.distray-3.part'), 'keep');
  symlinkSync(join(dir, 'outside'), join(workdir, 'linked'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A directory of busybox's own find, rm and sh, put first in PATH: a host without GNU findutils. */
function busyboxTools(): string {
  const bin = join(dir, 'busybox-bin');
  mkdirSync(bin);
  const busybox = execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim();
  for (const tool of ['find', 'rm', 'sh', 'printf']) symlinkSync(busybox, join(bin, tool));
  return bin;
}

function cleanWith(shell: readonly string[], dry: boolean, recorded: string[], path?: string, prelude = ''): string[] {
  const [program, ...before] = shell;
  const r = spawnSync(
    program!,
    [...before, '-c', prelude + CLEAN_SCRIPT, 'distray-clean', workdir, dry ? '1' : '', 'MARK'],
    {
      input: recorded.map((p) => `${p}\n`).join(''),
      env: path ? { ...process.env, PATH: `${path}:${process.env.PATH ?? ''}` } : process.env,
      encoding: 'utf8',
    },
  );
  expect(r.stdout.startsWith('\nMARK\n'), r.stdout + r.stderr).toBe(true);
  const records = r.stdout.slice('\nMARK\n'.length).split('\0');
  expect(records.pop()).toBe('');
  return records;
}

describe.each([
  ...SHELLS.map((s) => ({ ...s, busybox: false })),
  { name: 'busybox sh with busybox find', argv: ['busybox', 'sh'], busybox: true },
])('clean script under $name', ({ argv, busybox }) => {
  it('removes each temporary name whole, and nothing its lines name, through no link', () => {
    const path = busybox ? busyboxTools() : undefined;
    const recorded = ['linked/.z.distray-3.part', 'sub/../precious.blend'];
    const dry = cleanWith(argv, true, recorded, path);
    expect(dry.sort()).toEqual(['cleaned', `remove ${planted}`, 'remove sub/.y.distray-2.part\n'].sort());
    expect(readdirSync(workdir).sort()).toEqual([planted, 'linked', 'precious.blend', 'sub'].sort());

    const done = cleanWith(argv, false, recorded, path);
    expect(done.sort()).toEqual(dry.sort());
    expect(readdirSync(workdir).sort()).toEqual(['linked', 'precious.blend', 'sub']);
    expect(readdirSync(join(workdir, 'sub'))).toEqual(['mine']);
    expect(existsSync(join(dir, 'outside', '.z.distray-3.part'))).toBe(true);
  });

  it('checks the way to a recorded path as it removes it: a directory swapped for a link just before it is entered is not followed', () => {
    mkdirSync(join(workdir, 'out'));
    writeFileSync(join(workdir, 'out', 'f1.png'), 'mine');
    writeFileSync(join(dir, 'outside', 'f1.png'), 'not mine');
    // A cd that swaps out/ for a link to outside/ the moment the script enters it: what a renderer or
    // another user of the host could do between a look at the path and the act.
    // The same at the rm, for a script that would look at the path and then remove it by its whole name.
    const doSwap = `if [ ! -e "${dir}/swapped" ] && [ -d "${workdir}/out" ]; then : >"${dir}/swapped"; mv "${workdir}/out" "${workdir}/out.real" && ln -s "${dir}/outside" "${workdir}/out"; fi`;
    const swap = `cd() { if [ "$3" = out ]; then ${doSwap}; fi; command cd "$@"; }\nrm() { ${doSwap}; command rm "$@"; }\n`;
    const done = cleanWith(argv, false, ['out/f1.png'], busybox ? busyboxTools() : undefined, swap);
    expect(existsSync(join(dir, 'swapped'))).toBe(true);
    expect(done).not.toContain('remove out/f1.png');
    expect(existsSync(join(dir, 'outside', 'f1.png'))).toBe(true);
  });
});
