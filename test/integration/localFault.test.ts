import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { defaultsBlock, hostEntry, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';

/**
 * This machine's disk really full (a tmpfs of 256 KiB) under the log
 * directory and under the outputs: the run stops with exit 4 and a message
 * naming the path, and the host, which did nothing wrong, is neither charged
 * a failure nor blocked. Mounting needs root (CI runs the tests as root).
 */
const root = process.getuid?.() === 0;

let farm: Farm;
let host: SshdHost;
let n = 0;
const mounts: string[] = [];

interface Report {
  tasks: Array<{ frame: number; status: string; error?: string }>;
  hosts: Array<{ name: string; state: string; tasksDone: number; failures: number }>;
}

/** A tmpfs of 256 KiB at a new directory under the farm's, unmounted after the tests. */
function tinyDisk(name: string): string {
  const dir = join(farm.dir, name);
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

/** Every byte of the file system at `dir` taken (by a file `fill` there). */
function fill(dir: string): void {
  execFileSync('sh', ['-c', `cat /dev/zero > ${dir}/fill 2>/dev/null; true`]);
}

function workspace(): string {
  const dir = join(farm.dir, `w${++n}`);
  mkdirSync(dir);
  return dir;
}

/** Whatever files are below `dir`, as paths relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

describe.skipIf(!root)('a full local disk (needs root to mount a tmpfs)', () => {
  beforeAll(async () => {
    farm = startFarm();
    host = await farm.start('lf1');
  });

  afterAll(async () => {
    for (const dir of mounts) execFileSync('umount', [dir]);
    await farm?.stop();
  });

  const inventory = (): string =>
    farm.inventory(`${defaultsBlock(farm)}hosts:\n${hostEntry(farm, host)}\n`, `full${n}.yaml`);

  it('the log directory full: exit 4 naming the log, no host blamed, no log cut short', async () => {
    const logs = tinyDisk('logs');
    fill(logs);
    const cwd = workspace();
    const r = await runCli(
      ['run', inventory(), '1,6', 'sh', '-c', 'echo "rendering frame $1"', 'sh', '%d'].concat([
        '--log-dir',
        join(logs, 'run'),
        '--report',
        'report.json',
        '--plain',
      ]),
      { cwd },
    );
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(
      new RegExp(
        `cannot write the log ${join(logs, 'run')}/frame-\\d\\.lf1\\.\\d\\.log on this machine: no space left on the device \\(ENOSPC\\); ` +
          'the run stopped and no host was blamed: free space there or make it writable, or give --log-dir a place with room',
      ),
    );
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    const report = JSON.parse(readFileSync(join(cwd, 'report.json'), 'utf8')) as Report;
    expect(report.hosts).toEqual([expect.objectContaining({ name: 'lf1', failures: 0 })]);
    expect(report.hosts[0]!.state).not.toBe('blocked');
    expect(report.tasks.filter((t) => t.status === 'failed')).toEqual([]);
    // Nothing half-written: no temporary file left, and no log at its name (there was no room for any).
    expect(filesUnder(logs)).toEqual(['fill']);
  });

  it('the output directory full: exit 4 naming the output, no host blamed, nothing at a final path', async () => {
    const out = tinyDisk('out');
    const cwd = workspace();
    const r = await runCli(
      [
        'run',
        inventory(),
        '1,6',
        'sh',
        '-c',
        'echo "frame $1" > "f$1.txt"',
        'sh',
        '%d',
        '--out',
        `f%d.txt=${out}/f%d.txt`,
        '--report',
        'report.json',
        '--plain',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(
      new RegExp(
        `cannot write the outputs in ${out} on this machine: only [\\d.]+ [\\w ]+ free there .*; ` +
          'the run stopped and no host was blamed: free space there, or give --out a place with room',
      ),
    );
    expect(r.stderr).not.toMatch(/internal error/);
    const report = JSON.parse(readFileSync(join(cwd, 'report.json'), 'utf8')) as Report;
    expect(report.hosts).toEqual([expect.objectContaining({ name: 'lf1', failures: 0 })]);
    expect(report.hosts[0]!.state).not.toBe('blocked');
    expect(report.tasks.filter((t) => t.status === 'failed')).toEqual([]);
    expect(existsSync(out) && filesUnder(out)).toEqual([]);
  });
});
