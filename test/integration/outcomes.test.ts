/**
 * An attempt's outcome as fields, not prose: the report's tasks carry
 * exitCode, signal, timedOut, lost and cancelled, so a pipeline never parses
 * a message.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { defaultsBlock, hostEntry, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';

let farm: Farm;
let host: SshdHost;

interface Task {
  frame: number;
  status: string;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  lost: number;
  cancelled: boolean;
  stage?: string;
}

beforeAll(async () => {
  farm = startFarm();
  host = await farm.start('o1');
});

afterAll(async () => {
  await farm?.stop();
});

describe('typed outcomes in the report', () => {
  it('gives each task its exit status, signal, timeout and stage as fields', async () => {
    const cwd = join(farm.dir, 'outcomes');
    mkdirSync(cwd);
    // One slot: tasks end in order, and a success between failures keeps the host from being taken
    // out (3 different failures in a row would). Odd frames succeed; 2 exits 3; 4 is killed by SIGKILL;
    // 6 hangs past --timeout; 8 is not found; 10 exits 0 without its output.
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, host, { workdir: join(host.workdir, 'o') })}\n`,
      'o.yaml',
    );
    const script = [
      'case $0 in',
      '  2) exit 3 ;;',
      '  4) kill -KILL $$ ;;',
      '  6) exec sleep 600 ;;',
      '  8) exec ./no-such-renderer ;;',
      '  10) exit 0 ;;',
      '  *) echo ok > out$0 ;;',
      'esac',
    ].join('\n');
    const r = await runCli(
      [
        'run',
        inv,
        '1,10',
        'sh',
        '-c',
        script,
        '%d',
        '--out',
        'out%d=f%d',
        '--retries',
        '0',
        '--timeout',
        '3s',
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(1);
    const tasks = new Map(
      (JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as { tasks: Task[] }).tasks.map((t) => [t.frame, t]),
    );
    const plain = { timedOut: false, lost: 0, cancelled: false };
    for (const f of [1, 3, 5, 7, 9])
      expect(tasks.get(f)).toMatchObject({ status: 'done', exitCode: 0, signal: null, ...plain });
    expect(tasks.get(2)).toMatchObject({ status: 'failed', exitCode: 3, signal: null, stage: 'render', ...plain });
    expect(tasks.get(4)).toMatchObject({
      status: 'failed',
      exitCode: null,
      signal: 'SIGKILL',
      stage: 'render',
      ...plain,
    });
    expect(tasks.get(6)).toMatchObject({
      status: 'failed',
      exitCode: null,
      timedOut: true,
      stage: 'render',
      lost: 0,
      cancelled: false,
    });
    expect(tasks.get(8)).toMatchObject({ status: 'failed', exitCode: 127, stage: 'render', ...plain });
    expect(tasks.get(10)).toMatchObject({ status: 'failed', exitCode: 0, signal: null, stage: 'output', ...plain });
  });
});
