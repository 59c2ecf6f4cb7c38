/**
 * One planning measure, in a process of its own so its peak memory is its
 * own: `tsx bench/plan.ts FRAMES [--out SPEC]... [--tiles CxR --size WxH]` plans FRAMES on a local
 * inventory in an empty directory, marks the complete tasks (none are) as a
 * run does before connecting, schedules every task on a host of 4 slots whose
 * renders take no time (through the progress view, the report's tasks folded
 * from the events as a run does), writes the report, and prints {tasks, seconds, markSeconds, reportSeconds, planPeakMB, peakMB}.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { markComplete, prepare } from '../src/run.js';
import { parseRunArgs } from '../src/cli/runArgs.js';
import { PlainProgress } from '../src/views/progress.js';
import { summarise } from '../src/fold/summary.js';
import { writeReport } from '../src/report/json.js';
import { TaskFold } from '../src/fold/taskFold.js';
import { Scheduler } from '../src/scheduler/scheduler.js';

const [frames = '0,999999', ...rest] = process.argv.slice(2);
const outs: string[] = [];
const options: { tiles?: string; size?: string } = {};
for (let i = 0; i < rest.length; i++) {
  const [name, value] = [rest[i], rest[i + 1]];
  if (value === undefined) break;
  if (name === '--out') outs.push(value);
  else if (name === '--tiles' || name === '--size') options[name.slice(2) as 'tiles' | 'size'] = value;
  else continue;
  i++;
}

const dir = mkdtempSync(join(tmpdir(), 'distray-bench-plan-'));
try {
  process.chdir(dir);
  writeFileSync('hosts.yaml', 'hosts:\n  - local: true\n    workdir: work\n');
  const started = performance.now();
  const prepared = prepare(
    parseRunArgs({
      inventory: 'hosts.yaml',
      frames,
      exec: 'render',
      args: ['-f', '%d', '-o', 'out/%04d.png'],
      outs,
      ...options,
    }),
  );
  const planned = performance.now();
  const records = prepared.plan.tasks.map((t) => Scheduler.record(t));
  await markComplete(prepared.plan, records);
  const marked = performance.now();
  const planPeakMB = process.resourceUsage().maxRSS / 1024;
  // The run itself with renders that take no time, through the progress view, then the report.
  const scheduler = new Scheduler(records, { retries: 0, maxConsecutiveFailures: 3, now: () => performance.now() });
  // The report's tasks as a run makes them: folded from the events, the view reading the fold's counts.
  const tasks = new TaskFold(performance.now());
  tasks.begin(records);
  scheduler.on('event', (e) => tasks.add(e));
  new PlainProgress(() => {}).attach(scheduler, { fold: tasks });
  scheduler.expectHost('local');
  scheduler.addHost({
    name: 'local',
    slots: 4,
    run: (_task, _attempt, _signal, slot) => {
      slot.started();
      return Promise.resolve({ kind: 'done' });
    },
  });
  await scheduler.finished;
  await writeReport(
    'report.json',
    summarise(tasks.list(), scheduler.hosts.values(), { exitCode: 0, startedAt: new Date(), seconds: 0, errors: [] }),
  );
  const reported = performance.now();
  process.stdout.write(
    JSON.stringify({
      tasks: records.length,
      seconds: (planned - started) / 1000,
      markSeconds: (marked - planned) / 1000,
      reportSeconds: (reported - marked) / 1000,
      planPeakMB,
      peakMB: process.resourceUsage().maxRSS / 1024,
    }) + '\n',
  );
} finally {
  process.chdir(tmpdir());
  rmSync(dir, { recursive: true, force: true });
}
