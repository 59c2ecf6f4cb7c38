import { afterEach, describe, expect, it, vi } from 'vitest';

/**
 * HostLifecycle with the scheduler, against sessions the test opens and
 * loses by hand: the moves of a host's state through inventory edits,
 * losses and a block. Found by review: an old entry's reconnect try that
 * ended after an edit moved the new entry's host (a run that never ended).
 */

// Each LocalSession.open waits for the test to resolve or reject it.
const opens: Array<{ host: string; resolve: (s: unknown) => void; reject: (e: unknown) => void }> = [];
vi.mock('../../../src/hosts/localSession.js', () => ({
  LocalSession: {
    open: (name: string) => new Promise((resolve, reject) => opens.push({ host: name, resolve, reject })),
  },
}));
// The reconnect backoff passes at once (still abortable).
vi.mock('node:timers/promises', () => ({
  setTimeout: (_ms: number, v: unknown, o?: { signal?: AbortSignal }) =>
    new Promise((resolve, reject) => {
      if (o?.signal?.aborted) return reject(new Error('aborted'));
      setImmediate(() => (o?.signal?.aborted ? reject(new Error('aborted')) : resolve(v)));
    }),
}));
// Attempts: fail at once, end 'lost' with their session, or wait for the test.
const runner = vi.hoisted(() => ({ mode: 'lost', gates: [] as Array<(o: unknown) => void> }));
vi.mock('../../../src/execute/attempt.js', () => ({
  HostRunner: class {
    readonly name: string;
    readonly queues = false;
    constructor(
      private readonly session: { name: string; lost: Promise<Error> },
      readonly slots: number,
    ) {
      this.name = session.name;
    }
    canQueue(): boolean {
      return false;
    }
    run(): Promise<unknown> {
      if (runner.mode === 'gate') return new Promise((resolve) => runner.gates.push(resolve));
      if (runner.mode === 'fail') return Promise.resolve({ kind: 'failed', message: 'renderer missing' });
      return this.session.lost.then((e) => ({ kind: 'lost', message: e.message }));
    }
  },
}));

const { HostLifecycle } = await import('../../../src/execute/hostLifecycle.js');
const { Scheduler } = await import('../../../src/scheduler/scheduler.js');
const { ConnectionError } = await import('../../../src/errors.js');
const { Plan } = await import('../../../src/plan/plan.js');
const { parseFrameSpec } = await import('../../../src/plan/frames.js');

function fakeSession(name: string): {
  name: string;
  lost: Promise<Error>;
  markLost: (e: Error) => void;
  close(): Promise<void>;
  shell(): Promise<unknown>;
} {
  let markLost!: (e: Error) => void;
  const lost = new Promise<Error>((resolve) => (markLost = resolve));
  return { name, lost, markLost, close: () => Promise.resolve(), shell: () => Promise.resolve({ retire() {} }) };
}
/** Lets the lifecycle's promise chains run (no timers are involved: the backoff is mocked). */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
};
const entry = (name: string, port = 1): never =>
  ({
    name,
    local: true,
    slots: 1,
    workdir: '/tmp/x',
    env: {},
    loginTimeoutMs: 1000,
    host: name,
    port,
    user: 'u',
  }) as never;

function setup(
  frames: string,
  hosts: string[],
  retries = 2,
): { sched: InstanceType<typeof Scheduler>; lc: InstanceType<typeof HostLifecycle>; states: string[] } {
  const plan = new Plan({
    frames: parseFrameSpec(frames),
    exec: 'r',
    args: ['%d'],
    ins: [],
    outs: [],
    hostNames: hosts,
  });
  const sched = new Scheduler(
    plan.tasks.map((t) => Scheduler.record(t)),
    {
      retries,
      maxConsecutiveFailures: 3,
      now: () => performance.now(),
      onRefusedMove: (h, from, to) => {
        throw new Error(`host ${h}: ${from} -> ${to} is not a move a host can make`);
      },
    },
  );
  const states: string[] = [];
  sched.on('event', (e) => {
    if (e.type === 'host-state') states.push(`${e.host} ${e.state}`);
  });
  for (const h of hosts) sched.expectHost(h);
  const lc = new HostLifecycle(sched, plan, { warn: () => {} } as never, {
    plan,
    graceMs: 1000,
    note: () => {},
    logDir: '/tmp/distray-lifecycle-test',
  });
  return { sched, lc, states };
}

afterEach(() => {
  opens.length = 0;
  runner.mode = 'lost';
  runner.gates.length = 0;
  vi.restoreAllMocks();
});

describe('HostLifecycle and the host state machine', () => {
  it("lets a lost host's old reconnect try, ending after its entry was edited, move nothing (the new entry's host keeps working)", async () => {
    const { sched, lc } = setup('1', ['a'], 3);
    lc.start([entry('a')]);
    await settle();
    const first = fakeSession('a');
    opens.shift()!.resolve(first);
    await settle();
    first.markLost(new Error('gone'));
    await settle();
    const oldTry = opens.shift()!;
    lc.update({ added: [], removed: [], changed: [{ after: entry('a', 2) }] });
    await settle();
    const newTry = opens.shift()!;
    runner.mode = 'gate';
    newTry.resolve(fakeSession('a'));
    await settle();
    expect(sched.hosts.get('a')?.state).toBe('ok');
    // The old entry's try fails now (it was a connect to the old address, under way).
    oldTry.reject(new ConnectionError('unreachable', 'connect timed out'));
    await settle();
    expect(sched.hosts.get('a')?.state).toBe('ok');
    expect(sched.pendingHosts).toBe(0);
    // A failure on the new connection is retried there (nothing is waited for), and the run ends.
    runner.gates.shift()!({ kind: 'failed', message: 'exit 1' });
    await settle();
    runner.gates.shift()!({ kind: 'done' });
    await settle();
    expect(sched.records[0]!.status).toBe('done');
    expect(sched.done).toBe(true);
    await lc.stop();
  });

  it('keeps a blocked host out when its connection drops (only an edit of its entry brings it back)', async () => {
    runner.mode = 'fail';
    const { sched, lc, states } = setup('1,6', ['a', 'b'], 5);
    lc.start([entry('a'), entry('b')]);
    await settle();
    const a = fakeSession('a');
    opens
      .splice(
        opens.findIndex((o) => o.host === 'a'),
        1,
      )[0]!
      .resolve(a);
    await settle();
    expect(sched.hosts.get('a')?.state).toBe('blocked');
    a.markLost(new Error('reboot'));
    await settle();
    expect(opens.filter((o) => o.host === 'a')).toHaveLength(0);
    expect(sched.hosts.get('a')?.state).toBe('blocked');
    expect(states.filter((s) => s.startsWith('a '))).toEqual(['a connecting', 'a ok', 'a blocked']);
    opens.find((o) => o.host === 'b')!.reject(new ConnectionError('auth failed', 'refused'));
    await settle();
    await lc.stop();
  });
});
