import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { eventually, RUN_MS, within } from '../helpers/wait.js';
import { MAX_HOST_ROWS } from '../../src/views/progress.js';
import { shellJoin } from '../../src/ssh/quote.js';

// The live view on a real terminal (script(1) gives the CLI a pty), with hosts on this machine (`local: true`): what is
// tested is the view, which draws SSH hosts and local ones alike.
const hasScript = existsSync('/usr/bin/script');
const root = mkdtempSync(join(tmpdir(), 'distray-liveview-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

const ESC = String.fromCharCode(27);
const ANSI = new RegExp(`${ESC}\\[[0-9;?]*[A-Za-z]`, 'g');

/** What the terminal showed, without colours and cursor moves, one drawn line per line. */
function plain(tty: string): string {
  return tty.replace(ANSI, '').replace(/\r/g, '\n');
}

/** The CLI on a pty of 120x40 in the background: what it draws so far, and its exit status. */
function onTerminal(args: string[], cwd: string): { tty: () => string; exit: Promise<number | null> } {
  const command = `stty cols 120 rows 40; ${shellJoin([process.execPath, CLI, ...args])}`;
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm' };
  delete env.SSH_AUTH_SOCK;
  const child = spawn('script', ['-qec', command, '/dev/null'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let tty = '';
  child.stdout.on('data', (c: Buffer) => (tty += c.toString()));
  return { tty: () => tty, exit: new Promise((resolve) => child.on('close', resolve)) };
}

function workspace(): string {
  const dir = join(root, `v${++n}`);
  mkdirSync(dir);
  return dir;
}

/** Local hosts, each with its own workdir under `dir`. */
function inventory(dir: string, names: string[]): string {
  return `hosts:\n${names.map((h) => `  - local: true\n    name: ${h}\n    workdir: ${join(dir, `wd-${h}`)}\n`).join('')}`;
}

/** Frames a host started (the renderer's own log in its workdir). */
function started(dir: string, host: string): string[] {
  const log = join(dir, `wd-${host}`, 'started.log');
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
}

/** Notes its frame in the host's workdir, then renders once the file `go` exists: the test decides when tasks end. */
function blockingRender(go: string): string[] {
  return [
    'sh',
    '-c',
    'echo "$0" >> started.log; while [ ! -e "$1" ]; do sleep 0.1; done; echo "$0" > "o$0.txt"',
    '%d',
    go,
    '--out',
    'o%d.txt=out/o%d.txt',
  ];
}

describe.skipIf(!hasScript)('the live view on a terminal', () => {
  it('gives a host added to the inventory during the run its row, kept up to date, and says which host was removed', async () => {
    const dir = workspace();
    const inv = join(dir, 'farm.yaml');
    const go = join(dir, 'go');
    writeFileSync(inv, inventory(dir, ['h1', 'h2']));
    const run = onTerminal(['run', inv, '1,6', ...blockingRender(go), '--report', 'r.json'], dir);
    expect(
      await eventually(() => started(dir, 'h1').length > 0 && started(dir, 'h2').length > 0, 60_000),
      run.tty(),
    ).toBe(true);

    // h1 leaves (it finishes the frame it renders), h3 joins and takes the next frame.
    writeFileSync(inv, inventory(dir, ['h2', 'h3']));
    expect(await eventually(() => started(dir, 'h3').length > 0, 60_000), plain(run.tty())).toBe(true);
    const [h3Frame] = started(dir, 'h3');
    const [h1Frame] = started(dir, 'h1');
    // While everything waits for `go`: h3 has its row with the frame it renders, h1's row says it was removed.
    const h3Row = new RegExp(`h3: rendering ${h3Frame}\\b[^\\n]*, 0 done\\n`);
    expect(await eventually(() => h3Row.test(plain(run.tty())), 60_000), plain(run.tty())).toBe(true);
    expect(plain(run.tty())).toMatch(
      new RegExp(`h1: removed, rendering ${h1Frame}, 0 done \\(removed from the inventory`),
    );

    writeFileSync(go, '');
    expect(await within(run.exit, RUN_MS, 'distray to exit'), plain(run.tty())).toBe(0);
    const view = plain(run.tty());
    // The rows' last counts are the report's.
    const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')) as {
      hosts: Array<{ name: string; tasksDone: number }>;
    };
    const done = (name: string): number => report.hosts.find((h) => h.name === name)!.tasksDone;
    expect(done('h3')).toBeGreaterThanOrEqual(1);
    expect(view).toMatch(new RegExp(`h3: \\w+, ${done('h3')} done\\n`));
    expect(view).toMatch(new RegExp(`h1: removed, ${done('h1')} done \\(removed from the inventory`));
    for (let f = 1; f <= 6; f++) expect(readFileSync(join(dir, 'out', `o${f}.txt`), 'utf8')).toBe(`${f}\n`);
  }, 180_000);

  it('draws at most its cap of host rows for 60 hosts, and counts the rest in one row', async () => {
    const dir = workspace();
    const names = Array.from({ length: 60 }, (_, i) => `n${String(i + 1).padStart(2, '0')}`);
    writeFileSync(join(dir, 'farm.yaml'), inventory(dir, names));
    const run = onTerminal(
      ['run', 'farm.yaml', '1,60', 'sh', '-c', 'echo "$0" > "o$0.txt"', '%d', '--out', 'o%d.txt=out/o%d.txt'],
      dir,
    );
    expect(await within(run.exit, RUN_MS, 'distray to exit'), plain(run.tty())).toBe(0);
    const tty = run.tty();
    // Each redraw first erases the lines drawn before (log-update: erase line, cursor up, ..., erase line): the view's
    // height. It never was more than the overall line, the host rows and the cursor's line.
    const erases = [...tty.matchAll(new RegExp(`(?:${ESC}\\[2K${ESC}\\[1A)+${ESC}\\[2K`, 'g'))].map(
      (m) => m[0].split(`${ESC}[2K`).length - 1,
    );
    expect(erases.length).toBeGreaterThan(0);
    expect(Math.max(...erases)).toBeLessThanOrEqual(MAX_HOST_ROWS + 2);
    // The last view drawn: the overall count, 19 hosts and the count of the 41 others.
    const lines = plain(tty)
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('distray:'));
    const overall = lines.map((l) => l.includes('60/60 done')).lastIndexOf(true);
    const last = lines.slice(overall + 1);
    expect(last).toHaveLength(MAX_HOST_ROWS);
    expect(
      last.slice(0, -1).every((l) => /n\d\d: \w+, \d+ done$/.test(l)),
      last.join('\n'),
    ).toBe(true);
    expect(last.at(-1)).toMatch(/and 41 more hosts: 41 \w+$/);
  }, 180_000);
});
