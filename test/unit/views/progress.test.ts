import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan, type Task } from '../../../src/plan/plan.js';
import { formatSeconds, PlainProgress, QuietProgress } from '../../../src/views/progress.js';
import { TaskFold } from '../../../src/fold/taskFold.js';
import { Scheduler, type AttemptOutcome, type SchedulerHost } from '../../../src/scheduler/scheduler.js';

/** A host whose attempts take `ms` of fake time and end as `outcome` says. */
class TimedHost implements SchedulerHost {
  constructor(
    readonly name: string,
    private readonly ms: number,
    private readonly outcome: (task: Task) => AttemptOutcome,
  ) {}
  readonly slots = 1;
  async run(task: Task, _attempt: number, signal: AbortSignal): Promise<AttemptOutcome> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, this.ms);
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      });
    });
    return signal.aborted ? { kind: 'cancelled' } : this.outcome(task);
  }
}

function watch(
  frames: string,
  retries: number,
  hosts: SchedulerHost[],
  quiet = false,
): { lines: string[]; scheduler: Scheduler } {
  const plan = new Plan({ frames: parseFrameSpec(frames), exec: 'r', args: [], ins: [], outs: [], hostNames: ['x'] });
  const scheduler = new Scheduler(
    plan.tasks.map((t) => Scheduler.record(t)),
    { retries, maxConsecutiveFailures: 99, now: () => Date.now() },
  );
  const lines: string[] = [];
  // The run's fold first, as a run subscribes it.
  const fold = new TaskFold();
  fold.begin(scheduler.records);
  scheduler.on('event', (e) => fold.add(e));
  (quiet ? new QuietProgress((l) => lines.push(l)) : new PlainProgress((l) => lines.push(l))).attach(scheduler, {
    fold,
  });
  for (const h of hosts) scheduler.expectHost(h.name);
  for (const h of hosts) scheduler.addHost(h);
  return { lines, scheduler };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('PlainProgress', () => {
  it('times the attempt that won, not the task since its first try on a host that was lost', async () => {
    const { lines, scheduler } = watch('1', 2, [
      new TimedHost('h1', 37_600, () => ({ kind: 'lost', message: 'connection lost' })),
      new TimedHost('h2', 6_800, () => ({ kind: 'done' })),
    ]);
    await vi.runAllTimersAsync();
    await scheduler.drained();
    const done = lines.find((l) => l.includes('frame 1 done'));
    expect(done).toMatch(/frame 1 done on h2 in 6\.8s/);
  });

  it("prints a renderer's repeated output tail once, then names where it was shown", async () => {
    const tail = Array.from({ length: 10 }, (_, i) => `Parse Error line ${i}`).join('\n');
    const { lines, scheduler } = watch('1,3', 2, [
      new TimedHost('h1', 10, () => ({ kind: 'failed', message: `povray exited 1 on h1; last output:\n${tail}` })),
    ]);
    await vi.runAllTimersAsync();
    await scheduler.drained();
    const failures = lines.filter((l) => l.includes(' failed on h1'));
    expect(failures).toHaveLength(9);
    expect(lines.join('\n').split('Parse Error line 9')).toHaveLength(2);
    expect(failures.slice(1).every((l) => /; same output as frame 1 attempt 1$/.test(l))).toBe(true);
  });
});

describe('untrusted text in the plain and quiet lines', () => {
  it("shows a renderer's escape sequences and a host's control characters, never sends them to the terminal", async () => {
    const hostile = 'render failed; last output:\n\x1b]0;owned\x07\x1b[2Jgone';
    for (const quiet of [false, true]) {
      const { lines, scheduler } = watch(
        '1',
        0,
        [new TimedHost('h\x1b[31m1', 10, () => ({ kind: 'failed', message: hostile }))],
        quiet,
      );
      await vi.runAllTimersAsync();
      await scheduler.drained();
      const text = lines.join('\n');
      expect(text).toContain('\\x1b]0;owned\\x07\\x1b[2Jgone');
      expect(text).toContain('h\\x1b[31m1');
      // eslint-disable-next-line no-control-regex
      expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
    }
  });
});

describe('QuietProgress', () => {
  it('prints only the failures that gave up', async () => {
    const { lines, scheduler } = watch(
      '1,4',
      1,
      [new TimedHost('h1', 10, (t) => (t.frame === 3 ? { kind: 'failed', message: 'exit 2' } : { kind: 'done' }))],
      true,
    );
    await vi.runAllTimersAsync();
    await scheduler.drained();
    expect(lines).toEqual(['distray: frame 3 failed on h1 (attempt 2, giving up): exit 2']);
  });
});

describe('the ETA on the terminal', () => {
  it('rounds up before splitting into minutes and seconds: never "1m60s"', () => {
    expect(formatSeconds(119.5)).toBe('2m00s');
    expect(formatSeconds(59.5)).toBe('1m00s');
    expect(formatSeconds(3599.5)).toBe('1h00m');
    expect(formatSeconds(125)).toBe('2m05s');
    expect(formatSeconds(4)).toBe('4s');
  });
});
