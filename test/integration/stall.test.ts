import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, processesStartingWith, uniqueSleep } from '../helpers/wait.js';
import { runCli } from '../helpers/cli.js';
import { defaultsBlock, hostEntry, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';

// --stall on real sshd hosts: a renderer that hangs without output is stopped on its host (its whole
// process group), fails with `stalled`, and runs again elsewhere; one that keeps printing is not stopped.

let farm: Farm;
let hosts: SshdHost[];

interface Task {
  frame: number;
  status: string;
  host: string | null;
  attempts: number;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stalled: boolean;
  stage?: string;
  error?: string;
}

beforeAll(async () => {
  farm = startFarm();
  hosts = [await farm.start('s1'), await farm.start('s2')];
});

afterAll(async () => {
  await farm?.stop();
});

/** A workdir of its own on each host for one test; on s1 it holds `hang`, which the renderers below obey. */
function workdirs(name: string): string[] {
  const dirs = hosts.map((h) => join(h.workdir, name));
  for (const d of dirs) mkdirSync(d, { recursive: true });
  writeFileSync(join(dirs[0]!, 'hang'), '');
  return dirs;
}

describe('--stall', () => {
  it('stops a renderer that hangs without output, fails it with stalled, and the run succeeds on another host', async () => {
    const cwd = join(farm.dir, 'stall-retry');
    mkdirSync(cwd);
    const dirs = workdirs('stall-retry');
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hosts.map((h, i) => hostEntry(farm, h, { workdir: dirs[i] })).join('\n')}\n`,
      'stall-retry.yaml',
    );
    const marker = uniqueSleep(600);
    const printing = join(farm.dir, 'stall-retry-printing');
    const hangerGone = join(farm.dir, 'stall-retry-gone');
    // On s1 (its workdir holds `hang`) the renderer waits until the other host's renderer is printing,
    // says one line (from which its --stall counts), then hangs in a child of its own as well.
    const hanger = `while [ ! -e ${printing} ]; do sleep 0.05; done; echo loading; (${marker}) & ${marker}`;
    // Elsewhere it is slow but alive: it prints until it has seen the hung renderer come and go, so it
    // runs for longer than --stall, and was watched for longer than the hung one was. (Run again, after
    // that, it finishes at once.)
    const alive =
      `[ -e ${hangerGone} ] || { touch ${printing}; seen=; ` +
      `while :; do if pgrep -f '^${marker}' >/dev/null; then seen=1; elif [ -n "$seen" ]; then break; fi; echo rendering; sleep 0.2; done; touch ${hangerGone}; }`;
    const script = `if [ -e hang ]; then ${hanger}; else ${alive}; echo done > out$0; fi`;
    const r = await runCli(
      [
        'run',
        inv,
        '1,2',
        'sh',
        '-c',
        script,
        '%d',
        '--out',
        'out%d=f%d',
        '--stall',
        '2s',
        '--report',
        'r.json',
        '--plain',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as {
      tasks: Task[];
      hosts: Array<{ name: string; failures: number }>;
    };
    // Both frames are done on s2: the one that hung on s1 at its second attempt, the slow one at its first.
    expect(
      report.tasks
        .map((t) => ({ frame: t.frame, status: t.status, host: t.host, stalled: t.stalled }))
        .sort((a, b) => a.frame - b.frame),
    ).toEqual([
      { frame: 1, status: 'done', host: 's2', stalled: false },
      { frame: 2, status: 'done', host: 's2', stalled: false },
    ]);
    expect(report.tasks.map((t) => t.attempts).sort()).toEqual([1, 2]);
    expect(report.hosts.find((h) => h.name === 's1')!.failures).toBe(1);
    expect(r.stderr).toContain(
      'stalled on s1: no output and no change to its output files for 2s (--stall), so it was stopped',
    );
    expect(readFileSync(join(cwd, 'f1'), 'utf8')).toBe('done\n');
    expect(readFileSync(join(cwd, 'f2'), 'utf8')).toBe('done\n');
    // Nothing of the hung renderer is left on its host, not even its child.
    expect(await eventually(() => processesStartingWith(marker).length === 0, 60_000)).toBe(true);
  });

  it('reports a task whose every attempt stalled as failed with stalled: true', async () => {
    const cwd = join(farm.dir, 'stall-fail');
    mkdirSync(cwd);
    const dirs = workdirs('stall-fail');
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, hosts[0]!, { workdir: dirs[0] })}\n`,
      'stall-fail.yaml',
    );
    const marker = uniqueSleep(600);
    // Writes nothing at all, then hangs; --timeout is far off, so only --stall can stop it.
    const r = await runCli(
      [
        'run',
        inv,
        '1',
        'sh',
        '-c',
        `${marker}; echo done > out$0`,
        '%d',
        '--out',
        'out%d=f%d',
        '--stall',
        '1s',
        '--timeout',
        '1h',
        '--retries',
        '0',
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(1);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as { tasks: Task[] };
    expect(report.tasks[0]).toMatchObject({
      frame: 1,
      status: 'failed',
      stalled: true,
      timedOut: false,
      exitCode: null,
      signal: 'SIGTERM',
      stage: 'render',
      attempts: 1,
    });
    expect(report.tasks[0]!.error).toContain(
      'stalled on s1: no output and no change to its output files for 1s (--stall)',
    );
    expect(r.stderr).toContain('FAILED frame 1: sh stalled on s1');
    expect(await eventually(() => processesStartingWith(marker).length === 0, 60_000)).toBe(true);
  });

  it('refuses a --stall shorter than a second before connecting', async () => {
    const cwd = join(farm.dir, 'stall-usage');
    mkdirSync(cwd);
    const inv = farm.inventory(`${defaultsBlock(farm)}hosts:\n${hostEntry(farm, hosts[0]!)}\n`, 'stall-usage.yaml');
    const r = await runCli(['run', inv, '1', 'true', '--stall', '200ms'], { cwd });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^distray: --stall "200ms" is too short: at least 1s/);
  });
});
