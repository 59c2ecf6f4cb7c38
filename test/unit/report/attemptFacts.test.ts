import { describe, expect, it } from 'vitest';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan, type Task } from '../../../src/plan/plan.js';
import { attemptFacts, type SchedulerEvent } from '../../../src/scheduler/events.js';
import { Scheduler, type AttemptOutcome, type SchedulerHost } from '../../../src/scheduler/scheduler.js';

describe('attempt facts', () => {
  it.each<[string, AttemptOutcome, object]>([
    [
      'done',
      { kind: 'done', bytes: { in: 5, out: 7 } },
      { exitCode: 0, signal: null, timedOut: false, bytesIn: 5, bytesOut: 7 },
    ],
    [
      'failed by a signal at render',
      {
        kind: 'failed',
        message: 'x',
        failure: {
          stage: 'render',
          exitCode: null,
          signal: 'SIGKILL',
          timedOut: false,
          stalled: false,
          notFound: false,
        },
        bytes: { in: 1, out: 0 },
      },
      { exitCode: null, signal: 'SIGKILL', timedOut: false, stage: 'render', bytesIn: 1, bytesOut: 0 },
    ],
    [
      'timed out',
      {
        kind: 'failed',
        message: 'x',
        failure: { stage: 'render', exitCode: null, signal: null, timedOut: true, stalled: false, notFound: false },
      },
      { exitCode: null, timedOut: true, stage: 'render', bytesIn: 0, bytesOut: 0 },
    ],
    [
      'a missing output',
      {
        kind: 'failed',
        message: 'x',
        failure: { stage: 'output', exitCode: 0, signal: null, timedOut: false, stalled: false, notFound: false },
      },
      { exitCode: 0, stage: 'output' },
    ],
    [
      'stalled',
      {
        kind: 'failed',
        message: 'x',
        failure: { stage: 'render', exitCode: null, signal: null, timedOut: false, stalled: true, notFound: false },
      },
      { exitCode: null, timedOut: false, stalled: true, stage: 'render' },
    ],
    [
      'failed, with the log its renderer left',
      {
        kind: 'failed',
        message: 'x',
        log: '.distray/logs/run/frame-7.a.1.log',
        failure: { stage: 'render', exitCode: 2, signal: null, timedOut: false, stalled: false, notFound: false },
      },
      { exitCode: 2, stage: 'render', log: '.distray/logs/run/frame-7.a.1.log' },
    ],
    ['lost', { kind: 'lost', message: 'gone' }, { exitCode: null, signal: null, timedOut: false, stalled: false }],
  ])('%s', (_name, outcome, expected) => {
    const facts = attemptFacts(outcome, 1.23456);
    expect(facts).toMatchObject({ seconds: 1.235, ...expected });
    if (!('stage' in expected)) expect(facts).not.toHaveProperty('stage');
    if (!('log' in expected)) expect(facts).not.toHaveProperty('log');
  });

  it("are on the scheduler's attempt-ended events, from what the host returned", async () => {
    const tasks = [
      ...new Plan({ frames: parseFrameSpec('1,2'), exec: 'r', args: [], ins: [], outs: [], hostNames: ['h'] }).tasks,
    ];
    let clock = 0;
    const s = new Scheduler(
      tasks.map((t) => Scheduler.record(t)),
      { retries: 0, maxConsecutiveFailures: 3, now: () => clock },
    );
    const host: SchedulerHost = {
      name: 'h',
      slots: 1,
      run(task: Task, _attempt, _signal, slot): Promise<AttemptOutcome> {
        slot.started();
        clock += 2000;
        return Promise.resolve(
          task.frame === 1
            ? { kind: 'done', bytes: { in: 10, out: 20 } }
            : {
                kind: 'failed',
                message: 'exit 3',
                failure: {
                  stage: 'render',
                  exitCode: 3,
                  signal: null,
                  timedOut: false,
                  stalled: false,
                  notFound: false,
                },
                bytes: { in: 10, out: 0 },
              },
        );
      },
    };
    const ended: Array<Extract<SchedulerEvent, { type: 'attempt-ended' }>> = [];
    s.on('event', (e) => {
      if (e.type === 'attempt-ended') ended.push(e);
    });
    s.expectHost('h');
    s.addHost(host);
    await s.finished;
    expect(ended.map((e) => [e.task.frame, e.outcome, e.seconds, e.exitCode, e.stage, e.bytesIn, e.bytesOut])).toEqual([
      [1, 'done', 2, 0, undefined, 10, 20],
      [2, 'failed', 2, 3, 'render', 10, 0],
    ]);
    expect(Object.isFrozen(ended[0])).toBe(true);
  });
});
