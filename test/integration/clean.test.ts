import { execFileSync, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import { defaultsBlock, hostEntry, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';
import { RUN_MS, within } from '../helpers/wait.js';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));

let farm: Farm;
let h1: SshdHost;

beforeAll(async () => {
  farm = startFarm();
  h1 = await farm.start('h1');
});

afterAll(async () => {
  await farm?.stop();
});

describe('distray clean against a real sshd host', () => {
  it('removes only what distray made, inside the workdir, and a planted link as a link', async () => {
    const cwd = join(farm.dir, 'local');
    mkdirSync(join(cwd, 'tex'), { recursive: true });
    copyFileSync(join(fixtures, 'render.sh'), join(cwd, 'render.sh'));
    execFileSync('chmod', ['+x', join(cwd, 'render.sh')]);
    writeFileSync(join(cwd, 'tex', 'a.txt'), 'texture\n');
    const workdir = join(h1.workdir, 'clean');
    const inv = farm.inventory(`${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h1, { workdir })}\n`, 'clean.yaml');
    const r = await runCli(
      [
        'run',
        inv,
        '1,3',
        './render.sh',
        '%d',
        'out/%d.txt',
        '%{host}',
        '0',
        '--in',
        'render.sh',
        '--in',
        'tex',
        '--out',
        'out/%d.txt=f/%d.txt',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(workdir, '.distray'))).toBe(true);
    expect(existsSync(join(workdir, 'tex', 'a.txt'))).toBe(true);

    // What is not distray's: the renderer's own files and a user's; and outside the workdir, a directory and a file.
    writeFileSync(join(workdir, 'user.txt'), 'mine\n');
    const outside = join(farm.dir, 'outside');
    mkdirSync(outside, { recursive: true });
    writeFileSync(join(outside, 'precious.txt'), 'keep\n');
    // Planted links: an uploaded input replaced by a link to a file outside, and a link to a directory outside in .distray.
    rmSync(join(workdir, 'render.sh'));
    symlinkSync(join(outside, 'precious.txt'), join(workdir, 'render.sh'));
    symlinkSync(outside, join(workdir, '.distray', 'run', 'evil'));
    // A half-finished upload of an earlier run.
    writeFileSync(join(workdir, 'tex', '.b.txt.distray-0123abcd.part'), 'half');

    const dry = await runCli(['clean', inv, '--dry-run'], { cwd });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^h1: would remove \d+: /m);
    for (const p of ['.distray', 'render.sh', 'tex', 'tex/.b.txt.distray-0123abcd.part'])
      expect(dry.stdout).toContain(p);
    expect(dry.stdout).not.toContain('user.txt');
    expect(lstatSync(join(workdir, 'render.sh')).isSymbolicLink()).toBe(true);
    expect(existsSync(join(workdir, '.distray'))).toBe(true);

    const done = await runCli(['clean', inv], { cwd });
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/^h1: removed \d+: /m);
    const left = readdirSync(workdir).sort();
    expect(left).not.toContain('.distray');
    expect(left).not.toContain('render.sh');
    expect(left).not.toContain('tex');
    expect(left).toContain('user.txt');
    // render.sh's own bookkeeping is the renderer's, not distray's.
    expect(left).toContain('concurrency.log');
    expect(readFileSync(join(outside, 'precious.txt'), 'utf8')).toBe('keep\n');
    expect(readdirSync(outside)).toEqual(['precious.txt']);

    // Cleaned once, nothing is left to remove.
    const again = await runCli(['clean', inv], { cwd });
    expect(again.stdout).toMatch(/^h1: nothing to remove$/m);
  });

  it('removes a temporary name holding a newline whole, never the file its second line names', async () => {
    const cwd = join(farm.dir, 'newline');
    mkdirSync(cwd, { recursive: true });
    const workdir = join(h1.workdir, 'newline');
    mkdirSync(join(workdir, 'sub'), { recursive: true });
    // A line-by-line reading of .x.distray-1.part<newline>precious.blend finds "precious.blend".
    const planted = '.x.distray-1.part\nprecious.blend';
    writeFileSync(join(workdir, planted), 'planted');
    writeFileSync(join(workdir, 'precious.blend'), 'keep');
    writeFileSync(join(workdir, 'sub', 'precious.blend'), 'keep');
    writeFileSync(join(workdir, 'sub', '.y.distray-2.part\nprecious.blend\n'), 'planted');
    writeFileSync(join(workdir, 'sub', '.z.distray-3.part'), 'half');
    const inv = farm.inventory(`${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h1, { workdir })}\n`, 'newline.yaml');
    // A recorded output with a newline cannot go to the host a line each: it is named, not sent.
    mkdirSync(join(cwd, '.distray'));
    writeFileSync(join(cwd, '.distray', 'made.json'), JSON.stringify({ h1: { [workdir]: ['out\nprecious.blend'] } }));

    const dry = await runCli(['clean', inv, '--dry-run'], { cwd });
    expect(dry.code, dry.stderr).toBe(0);
    // One line for the host, the odd names quoted with their escapes.
    const [line, ...more] = dry.stdout.split('\n');
    expect(more).toEqual(['']);
    expect(line).toMatch(/^h1: would remove 3: /);
    expect(
      line!
        .replace(/^h1: would remove 3: /, '')
        .split(', ')
        .sort(),
    ).toEqual(
      [
        JSON.stringify(planted),
        JSON.stringify('sub/.y.distray-2.part\nprecious.blend\n'),
        'sub/.z.distray-3.part',
      ].sort(),
    );
    expect(readdirSync(workdir).sort()).toEqual([planted, 'precious.blend', 'sub'].sort());

    const done = await runCli(['clean', inv], { cwd });
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/^h1: removed 3: /);
    expect(done.stderr).toContain(
      `distray: h1: "out\\nprecious.blend" in ${workdir} was not removed: a path with a newline cannot be sent to the host; remove it by hand`,
    );
    expect(readdirSync(workdir).sort()).toEqual(['precious.blend', 'sub']);
    expect(readdirSync(join(workdir, 'sub'))).toEqual(['precious.blend']);
    expect(readFileSync(join(workdir, 'precious.blend'), 'utf8')).toBe('keep');
    expect(readFileSync(join(workdir, 'sub', 'precious.blend'), 'utf8')).toBe('keep');
  });

  it('leaves a workdir alone while a run is using it, even between its tasks', async () => {
    const cwd = join(farm.dir, 'busy');
    mkdirSync(cwd, { recursive: true });
    const workdir = join(h1.workdir, 'busy');
    const inv = farm.inventory(`${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h1, { workdir })}\n`, 'busy.yaml');
    // Frame 1 renders and ends; frame 2 waits for the file go: in between no lease need be held.
    const env = { ...process.env };
    delete env.SSH_AUTH_SOCK;
    const child = spawn(
      process.execPath,
      [
        CLI,
        'run',
        inv,
        '1,2',
        'sh',
        '-c',
        'while [ "$0" = 2 ] && [ ! -e go ]; do sleep 0.05; done; echo $0 > o$0',
        '%d',
        '--out',
        'o%d=f%d',
      ],
      {
        cwd,
        env,
        stdio: ['ignore', 'ignore', 'ignore'],
      },
    );
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const started = (): boolean =>
      existsSync(join(workdir, '.distray', 'run')) && readdirSync(join(workdir, '.distray', 'run')).length > 0;
    for (let i = 0; i < 1200 && !started(); i++) await new Promise((r) => setTimeout(r, 100));
    const busy = await runCli(['clean', inv], { cwd });
    expect(busy.stdout).toMatch(/^h1: busy/m);
    expect(existsSync(join(workdir, '.distray', 'run'))).toBe(true);
    writeFileSync(join(workdir, 'go'), '');
    expect(await within(closed, RUN_MS, 'distray clean to exit')).toBe(0);
  });
});
