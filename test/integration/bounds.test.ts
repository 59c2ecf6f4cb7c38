/**
 * A host that sends back more than anyone should hold: an image that
 * declares gigapixels, a log of gigabytes, an output over 4 GiB or larger
 * than this machine's free disk. The controller stays small, the attempt
 * fails (and uses a retry, so a hostile host ends up failing its frames,
 * not being retried for ever as lost), and the run ends with its report.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { craftedPng } from '../helpers/png.js';
import { defaultsBlock, hostEntry, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';

let farm: Farm;
let host: SshdHost;
let n = 0;

interface Report {
  tasks: Array<{ frame: number; status: string; attempts: number; lost: number; error?: string; log?: string }>;
  hosts: Array<{ name: string; state: string; failures: number }>;
}

function workspace(): string {
  const dir = join(farm.dir, `b${++n}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function report(cwd: string): Report {
  return JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
}

function inventory(name: string): string {
  return farm.inventory(
    `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, host, { workdir: join(host.workdir, name) })}\n`,
    `${name}.yaml`,
  );
}

/** Every file under `dir` whose name marks it temporary. */
function partFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.includes('.part'));
}

/** Runs the CLI and returns, with its result, the most memory it held (its max RSS, in MB), which it writes as it exits. */
async function measured(args: string[], cwd: string, timeoutMs?: number): Promise<CliResult & { maxRssMb: number }> {
  const probe = join(cwd, 'maxrss.cjs');
  const out = join(cwd, 'maxrss.txt');
  writeFileSync(
    probe,
    `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, String(process.resourceUsage().maxRSS)));\n`,
  );
  const r = await runCli(args, {
    cwd,
    env: { NODE_OPTIONS: `--require ${probe}` },
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
  return { ...r, maxRssMb: Number(readFileSync(out, 'utf8')) / 1024 };
}

/** A renderer script in the workspace, uploaded with --in. */
function script(cwd: string, name: string, body: string): string {
  writeFileSync(join(cwd, name), `#!/bin/sh\n${body}\n`);
  chmodSync(join(cwd, name), 0o755);
  return name;
}

beforeAll(async () => {
  farm = startFarm();
  host = await farm.start('big');
});

afterAll(async () => {
  await farm?.stop();
});

describe('an image output that declares too many pixels', () => {
  it('is refused from its header, with a message naming the host, the frame, the size and --max-pixels; the controller lives on and the attempt uses a retry', async () => {
    const cwd = workspace();
    writeFileSync(join(cwd, 'bomb.png'), craftedPng(40000, 40000));
    const args = [
      'run',
      inventory('bomb'),
      '0',
      'cp',
      'bomb.png',
      'out%d.png',
      '--in',
      'bomb.png',
      '--out',
      'out%d.png=got/out%d.png',
      '--retries',
      '1',
      '--report',
      'r.json',
    ];
    const r = await measured(args, cwd);
    expect(r.code, r.stderr).toBe(1);
    const task = report(cwd).tasks[0]!;
    expect(task).toMatchObject({ status: 'failed', attempts: 2, lost: 0, stage: 'output' });
    expect(task.error).toMatch(
      /^out0\.png from big \(frame 0\) declares 40000x40000 pixels \(1600 megapixels\), more than --max-pixels allows \(268402689, .*\), so it was not decoded; .*raise --max-pixels/,
    );
    expect(report(cwd).hosts[0]).toMatchObject({ name: 'big', failures: 2 });
    expect(existsSync(join(cwd, 'got', 'out0.png'))).toBe(false);
    expect(partFiles(join(cwd, 'got'))).toEqual([]);
    expect(r.maxRssMb, r.stderr).toBeLessThan(500);
    // Raised above its size, it is decoded, and found to hold 16 rows of 40000.
    const raised = await runCli([...args, '--max-pixels', String(40000 * 40000)], { cwd });
    expect(raised.code, raised.stderr).toBe(1);
    expect(report(cwd).tasks[0]!.error).toMatch(/out0\.png from big \(frame 0\) is not a complete image/);
  });

  it('--max-pixels takes a whole number of pixels', async () => {
    const cwd = workspace();
    const r = await runCli(['run', inventory('bad-max'), '0', 'true', '--max-pixels', '16k'], { cwd });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--max-pixels "16k": expected a whole number of pixels/);
  });
});

describe('a log of gigabytes', () => {
  it('costs only its tail: a 5 GB (sparse) stdout neither loses the host nor fills the controller, and the task counts its attempts', async () => {
    const cwd = workspace();
    // The log is the renderer's stdout redirected to a file on the host: truncate makes it 5 GB of
    // holes, and >> writes after them. Frame 0 succeeds, frame 1 fails.
    const loud = script(
      cwd,
      'loud.sh',
      'truncate -s 5G /dev/stdout && echo "last words of $1" >>/dev/stdout; exit "$1"',
    );
    const r = await measured(
      ['run', inventory('loud'), '0,1', `./${loud}`, '%d', '--in', loud, '--retries', '1', '--report', 'r.json'],
      cwd,
    );
    expect(r.code, r.stderr).toBe(1);
    const [done, failed] = report(cwd).tasks;
    expect(done).toMatchObject({ frame: 0, status: 'done', attempts: 1, lost: 0 });
    expect(failed).toMatchObject({ frame: 1, status: 'failed', attempts: 2, lost: 0, exitCode: 1 });
    expect(failed!.error).toMatch(/last output:\n[^]*last words of 1$/);
    expect(report(cwd).hosts[0]!.state).not.toBe('lost');
    // The log here is the output's last MiB, saying how much was cut.
    const size = 5 * 1024 ** 3 + 'last words of 1\n'.length;
    expect(statSync(failed!.log!).size).toBeLessThan(1024 * 1024 + 1024);
    expect(readFileSync(failed!.log!, 'latin1')).toContain(
      `# output cut: its first ${size - 1024 * 1024} bytes of ${size} are not kept, only the last ${1024 * 1024}\n`,
    );
    expect(r.maxRssMb, r.stderr).toBeLessThan(500);
  });
});

describe('an output over 4 GiB', () => {
  it('is fetched whole, streamed: its size and its last bytes are right, it stays sparse, and the controller stays small', async () => {
    const cwd = workspace();
    const mk = script(cwd, 'mk.sh', 'truncate -s 4097M "big$1.bin" && printf end >>"big$1.bin"');
    // 4 GiB through SSH's cipher: a minute on a busy 2-core machine, so the limits are generous.
    const r = await measured(
      [
        'run',
        inventory('huge'),
        '0',
        `./${mk}`,
        '%d',
        '--in',
        mk,
        '--out',
        'big%d.bin=got/big%d.bin',
        '--report',
        'r.json',
      ],
      cwd,
      500_000,
    );
    expect(r.code, r.stderr).toBe(0);
    const got = join(cwd, 'got', 'big0.bin');
    expect(statSync(got).size).toBe(4097 * 1024 ** 2 + 3);
    const file = await open(got, 'r');
    const tail = Buffer.alloc(3);
    await file.read(tail, 0, 3, 4097 * 1024 ** 2);
    await file.close();
    expect(tail.toString()).toBe('end');
    // Its holes stay holes here: 4 GiB of zeros took no disk.
    expect(statSync(got).blocks * 512).toBeLessThan(64 * 1024 ** 2);
    expect(r.maxRssMb, r.stderr).toBeLessThan(500);
  }, 600_000);

  it('larger than the free space here is refused before a byte is fetched, naming the file, the host and the sizes; the attempt uses a retry', async () => {
    const cwd = workspace();
    mkdirSync(join(cwd, 'got'));
    // Sparse on the host: as large as this machine's free space and one GiB more.
    const fs = statfsSync(join(cwd, 'got'));
    const size = fs.bavail * fs.bsize + 1024 ** 3;
    const mk = script(cwd, 'mk.sh', `truncate -s ${size} "big$1.bin"`);
    const r = await runCli(
      [
        'run',
        inventory('full'),
        '0',
        `./${mk}`,
        '%d',
        '--in',
        mk,
        '--out',
        'big%d.bin=got/big%d.bin',
        '--retries',
        '1',
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(1);
    const task = report(cwd).tasks[0]!;
    expect(task).toMatchObject({ status: 'failed', attempts: 2, lost: 0, stage: 'output' });
    expect(task.error).toMatch(
      new RegExp(
        `^big0\\.bin on big is ${size} bytes \\(.* GiB\\), more than the .* free in .* here .*: free space there or send --out elsewhere`,
      ),
    );
    expect(task.error).toContain(` free in ${join(cwd, 'got')} here `);
    expect(readdirSync(join(cwd, 'got'))).toEqual([]);
  });
});
