/**
 * The `sim` benchmark: the real Scheduler, driven by in-process fake hosts
 * on a virtual clock. No SSH, no I/O, no real timers: a discrete-event loop
 * advances time to the next event, so a run of 100,000 tasks of half a
 * minute each takes as long as the controller's own bookkeeping does, and
 * that is what it measures (process.cpuUsage around the run).
 *
 *   npm run bench -- sim
 *   SIM_HOSTS=10,100 SIM_TASKS=20000 SIM_SPECULATE=0 SIM_RUNS=1 npm run bench -- sim
 *
 * The farm: `slots` per host; a tenth of the hosts 4x slower; 1% die
 * mid-run (noticed after the keepalive, their attempts return `lost` after
 * the grace period, as the attempt layer does); 1% hang mid-run (every
 * render there from then on runs into the attempt --timeout). Task times
 * are log-normal (median 30 s), the same task as long on any host of one
 * speed.
 *
 * CPU is per task done, of the whole process, in three parts. The harness
 * (the clock, the fake hosts, a macrotask turn per event) is the same farm
 * under a bare dispatcher (BareDispatcher) that gives each slot one signal.
 * Signals: the same again with a new AbortSignal per attempt, as
 * SchedulerHost.run requires of any dispatcher (on Node 20 making one costs
 * about 2.5 us, and thousands in flight cost the GC). The scheduler: the
 * rest. Each case runs in a process of its own, compiled as the CLI is (no
 * tsx).
 *
 * Makespan is compared with the list-scheduling bound W/C + pmax: the time
 * by which the farm's capacity (slow hosts count a quarter, a dying or
 * hanging host only until its fate) covers the total work, plus the longest
 * task; greedy list scheduling on identical machines is never worse than
 * that, and no schedule beats W/C.
 */
import { parseFrameSpec } from '../src/plan/frames.js';
import { Plan } from '../src/plan/plan.js';
import { Scheduler, type AttemptOutcome, type AttemptSlot, type SchedulerHost } from '../src/scheduler/scheduler.js';
import type { Task } from '../src/plan/plan.js';
import type { TaskRecord } from '../src/scheduler/scheduler.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// The same seeded generator (mulberry32) as the tests' random farms: every run of the bench sees the same farm.
import { random as seeded } from '../test/helpers/fakeFarm.js';

const MEDIAN_MS = 30_000;
const SIGMA = 0.6;
const SLOW = 4;
const DOWNLOAD_MS = 300;
const DETECT_MS = 30_000;
const GRACE_MS = 30_000;
const TIMEOUT_MS = 10 * MEDIAN_MS;

interface Event {
  t: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** The virtual clock: a binary heap of events by time (then by order of scheduling). */
class Clock {
  now = 0;
  private heap: Event[] = [];
  private seq = 0;
  at(t: number, fn: () => void): Event {
    const e: Event = { t: Math.max(t, this.now), seq: this.seq++, fn, cancelled: false };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p]!, e)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
    return e;
  }
  pop(): Event | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && less(h[r]!, h[l]!) ? r : l;
        if (less(last, h[c]!)) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
  get size(): number {
    return this.heap.length;
  }
}

function less(a: Event, b: Event): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}

interface Pending {
  task: Task;
  signal: AbortSignal;
  slot: AttemptSlot;
  resolve(o: AttemptOutcome): void;
  end?: Event;
  onAbort?: () => void;
}

/** A host whose slots are lanes (like the host shell): an attempt given to a busy lane waits there. */
class SimHost implements SchedulerHost {
  readonly queues = true;
  private readonly lanes: Pending[][] = [];
  private dead = false;
  private hung = false;
  ran = 0;
  constructor(
    readonly name: string,
    readonly slots: number,
    private readonly factor: number,
    private readonly clock: Clock,
    private readonly duration: (t: Task) => number,
  ) {
    for (let i = 0; i < slots; i++) this.lanes.push([]);
  }

  run(task: Task, _attempt: number, signal: AbortSignal, slot: AttemptSlot): Promise<AttemptOutcome> {
    return new Promise((resolve) => {
      const p: Pending = { task, signal, slot, resolve };
      if (this.dead) return this.loseLater([p]);
      const lane = this.lanes[slot.lane]!;
      lane.push(p);
      p.onAbort = () => this.abort(p);
      signal.addEventListener('abort', p.onAbort, { once: true });
      if (lane.length === 1) this.start(p);
    });
  }

  private start(p: Pending): void {
    p.slot.started();
    this.ran++;
    const ms = this.hung ? TIMEOUT_MS : this.duration(p.task) * this.factor;
    p.end = this.clock.at(this.clock.now + ms, () => this.end(p));
  }

  private end(p: Pending): void {
    const hungNow = this.hung;
    this.leave(p);
    if (hungNow) p.resolve({ kind: 'failed', message: 'timed out' });
    else {
      p.slot.released?.();
      this.clock.at(this.clock.now + DOWNLOAD_MS, () => p.resolve({ kind: 'done' }));
    }
  }

  private leave(p: Pending): void {
    if (p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
    const lane = this.lanes[p.slot.lane]!;
    const i = lane.indexOf(p);
    if (i >= 0) lane.splice(i, 1);
    if (i === 0 && lane[0] && !this.dead) this.start(lane[0]);
  }

  private abort(p: Pending): void {
    if (p.end) p.end.cancelled = true;
    this.leave(p);
    p.resolve({ kind: 'cancelled' });
  }

  /** The host stops answering: noticed after the keepalive, its attempts come back `lost` after the grace period. */
  die(removeHost: () => void): void {
    this.dead = true;
    const all = this.lanes.flatMap((l) => l.splice(0));
    for (const p of all) {
      if (p.end) p.end.cancelled = true;
      if (p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
    }
    this.clock.at(this.clock.now + DETECT_MS, removeHost);
    this.loseLater(all);
  }

  /**
   * Its attempts wait out the grace period, then come back `lost`; stopped
   * sooner (a speculative copy won), one ends `cancelled` at once, which is
   * what the attempt layer's wait for a host to rejoin must do too.
   */
  private loseLater(ps: Pending[]): void {
    for (const p of ps) {
      const onAbort = (): void => p.resolve({ kind: 'cancelled' });
      p.signal.addEventListener('abort', onAbort, { once: true });
      this.clock.at(this.clock.now + DETECT_MS + GRACE_MS, () => {
        p.signal.removeEventListener('abort', onAbort);
        p.resolve({ kind: 'lost', message: `${this.name} was lost` });
      });
    }
  }

  /** Its renders stall from now on: each runs into the attempt timeout. */
  hang(): void {
    this.hung = true;
    for (const lane of this.lanes) {
      const p = lane[0];
      if (!p?.end) continue;
      const started = p.end.t - this.duration(p.task) * this.factor;
      p.end.cancelled = true;
      p.end = this.clock.at(Math.max(this.clock.now, started + TIMEOUT_MS), () => this.end(p));
    }
  }
}

export interface SimResult {
  hosts: number;
  slots: number;
  tasks: number;
  done: number;
  finished: boolean;
  cpuUsPerTask: number;
  peakRssMb: number;
  makespan: number;
  bound: number;
}

/** What drives the farm: the real Scheduler, or the bare dispatcher that measures the harness alone. */
interface Driver {
  readonly finished: boolean;
  readonly done: number;
  addHost(h: SimHost): void;
  removeHost(name: string): void;
}

/**
 * The least any dispatcher must do, to measure what the harness costs: a
 * stack of tasks, a list of free slots, one signal and one slot object per
 * slot (made once); a task that does not end `done` goes back to the stack
 * and its host takes no more. No retries elsewhere, no queueing behind a
 * render, no speculation, no pace. The fake hosts, the clock and the event loop cost about as much
 * under it as under the Scheduler: what a run costs beyond it is the
 * Scheduler's own.
 */
interface BareLane {
  host: SimHost;
  slot: AttemptSlot;
  signal: AbortSignal;
  /** Given a task that has not released it yet. */
  busy: boolean;
  /** Tasks given to it so far: the last one's number is the one its slot's released() speaks for. */
  given: number;
}

class BareDispatcher implements Driver {
  finished = false;
  done = 0;
  private readonly stack: Task[];
  private readonly free: BareLane[] = [];
  private readonly gone = new Set<string>();
  /** `signals`: a new AbortSignal per attempt (what SchedulerHost.run asks of any dispatcher), not one per slot. */
  constructor(
    private readonly tasks: readonly Task[],
    private readonly signals: boolean,
  ) {
    this.stack = [...tasks].reverse();
  }
  addHost(host: SimHost): void {
    for (let lane = 0; lane < host.slots; lane++) {
      const entry: BareLane = {
        host,
        slot: { lane, started: () => {}, released: () => this.release(entry) },
        signal: new AbortController().signal,
        busy: false,
        given: 0,
      };
      this.free.push(entry);
    }
    this.pump();
  }
  removeHost(name: string): void {
    this.gone.add(name);
  }
  private pump(): void {
    while (this.stack.length > 0 && this.free.length > 0) {
      const lane = this.free.pop()!;
      if (this.gone.has(lane.host.name)) continue;
      const task = this.stack.pop()!;
      const signal = this.signals ? new AbortController().signal : lane.signal;
      lane.busy = true;
      const given = ++lane.given;
      void lane.host.run(task, 1, signal, lane.slot).then((o) => {
        // Not released by its renderer (it failed): the slot is free now, unless the lane has moved on already.
        if (lane.given === given) this.release(lane);
        this.end(task, lane.host, o);
      });
    }
  }
  /** The lane's renderer ended (released) or its attempt did: it takes the next task. */
  private release(lane: BareLane): void {
    if (!lane.busy) return;
    lane.busy = false;
    this.free.push(lane);
    this.pump();
  }
  private end(task: Task, host: SimHost, o: AttemptOutcome): void {
    if (o.kind === 'done') {
      if (++this.done === this.tasks.length) this.finished = true;
      return;
    }
    this.gone.add(host.name);
    this.stack.push(task);
    this.pump();
  }
}

/** The real Scheduler as a Driver, every host expected before any is added (as while a run connects). */
function schedulerDriver(
  records: TaskRecord[],
  hosts: readonly SimHost[],
  now: () => number,
  speculate: boolean,
  watch?: SimOptions['watch'],
): Driver {
  const s = new Scheduler(records, { retries: 2, maxConsecutiveFailures: 3, now, speculate });
  watch?.(s, records);
  let finished = false;
  void s.finished.then(() => (finished = true));
  for (const h of hosts) s.expectHost(h.name);
  return {
    get finished() {
      return finished;
    },
    get done() {
      return records.filter((r) => r.status === 'done').length;
    },
    addHost: (h) => s.addHost(h),
    removeHost: (name) => s.removeHost(name, 'lost', 'keepalive timed out'),
  };
}

export async function simulate(opts: SimOptions): Promise<SimResult> {
  const random = seeded(opts.seed ?? 42);
  const clock = new Clock();
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const base = Array.from({ length: opts.tasks }, () => MEDIAN_MS * Math.exp(SIGMA * normal()));
  const plan = new Plan({
    frames: parseFrameSpec(`1,${opts.tasks}`),
    exec: 'r',
    args: [],
    ins: [],
    outs: [],
    hostNames: ['x'],
  });
  const records = plan.tasks.map((t) => Scheduler.record(t));

  // The farm: every tenth host slow, 1% (at least one) dying and 1% hanging, spread over the list.
  const odd = Math.max(1, Math.round(opts.hosts / 100));
  const hosts: Array<{ host: SimHost; fate: 'ok' | 'die' | 'hang'; factor: number }> = [];
  for (let i = 0; i < opts.hosts; i++) {
    const factor = i % 10 === 9 ? SLOW : 1;
    const fate =
      i % Math.floor(opts.hosts / odd) === 3 ? 'die' : i % Math.floor(opts.hosts / odd) === 5 ? 'hang' : 'ok';
    hosts.push({ host: new SimHost(`h${i}`, opts.slots, factor, clock, (t) => base[t.index]!), fate, factor });
  }
  const work = base.reduce((a, b) => a + b, 0);
  const capacity = hosts.filter((h) => h.fate === 'ok').reduce((c, h) => c + opts.slots / h.factor, 0);
  const expected = work / capacity;
  // Fates strike between a fifth and three fifths of the expected makespan.
  const fateAt = new Map(hosts.filter((h) => h.fate !== 'ok').map((h) => [h, expected * (0.2 + 0.4 * random())]));
  // The time by which the farm (a fated host only until its fate) could have done all the work, plus the longest task.
  let lb = expected;
  for (let i = 0; i < 50; i++) {
    let done = capacity * lb;
    for (const [h, t] of fateAt) done += (opts.slots / h.factor) * Math.min(lb, t);
    lb *= work / done;
  }
  const bound = lb + Math.max(...base);

  // The scheduler's own timers (its re-check of slots that left tasks to faster hosts) run on the virtual clock.
  const realSetTimeout = globalThis.setTimeout;
  const realClearTimeout = globalThis.clearTimeout;
  globalThis.setTimeout = ((fn: () => void, ms?: number) =>
    clock.at(clock.now + (ms ?? 0), fn)) as unknown as typeof setTimeout;
  globalThis.clearTimeout = ((e?: Event) => {
    if (e && typeof e === 'object' && 'cancelled' in e) e.cancelled = true;
  }) as unknown as typeof clearTimeout;

  let peakRss = process.memoryUsage().rss;
  const cpu0 = process.cpuUsage();
  const budgetUs = (opts.cpuBudgetS ?? 120) * 1e6;
  let driver: Driver | undefined;
  try {
    const farm = hosts.map((h) => h.host);
    const d = (driver = opts.bare
      ? new BareDispatcher(plan.tasks, opts.bare === 'signals')
      : schedulerDriver(records, farm, () => clock.now, opts.speculate ?? true, opts.watch));
    for (const h of farm) d.addHost(h);
    for (const [h, when] of fateAt) {
      clock.at(when, () => (h.fate === 'die' ? h.host.die(() => d.removeHost(h.host.name)) : h.host.hang()));
    }
    let events = 0;
    while (!d.finished) {
      // Every promise continuation of the last event runs before the next event: a macrotask turn drains them.
      await new Promise<void>((r) => setImmediate(r));
      if (d.finished) break;
      let e = clock.pop();
      while (e?.cancelled) e = clock.pop();
      if (!e) break;
      clock.now = e.t;
      e.fn();
      if (++events % 2000 === 0) {
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
        const used = process.cpuUsage(cpu0);
        if (used.user + used.system > budgetUs) break;
      }
    }
  } finally {
    globalThis.setTimeout = realSetTimeout;
    globalThis.clearTimeout = realClearTimeout;
  }
  const used = process.cpuUsage(cpu0);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  const done = driver?.done ?? 0;
  return {
    hosts: opts.hosts,
    slots: opts.slots,
    tasks: opts.tasks,
    done,
    finished: driver?.finished ?? false,
    cpuUsPerTask: (used.user + used.system) / Math.max(1, done),
    peakRssMb: peakRss / 2 ** 20,
    makespan: clock.now / 1000,
    bound: bound / 1000,
  };
}

export async function simBench(): Promise<void> {
  const sizes = (process.env.SIM_HOSTS ?? '10,100,1000').split(',').map(Number);
  const tasks = Number(process.env.SIM_TASKS ?? 100_000);
  const slots = Number(process.env.SIM_SLOTS ?? 8);
  // Both by default, side by side: speculation must never make a run slower.
  const modes =
    process.env.SIM_SPECULATE === '0' ? [false] : process.env.SIM_SPECULATE === '1' ? [true] : [false, true];
  const budget = Number(process.env.SIM_BUDGET ?? 120);
  const runs = Number(process.env.SIM_RUNS ?? 3);
  const child = await compiledChild();
  const run = (opts: SimOptions): SimResult => fastestOf(runs, () => inChild(child, opts));
  console.log(
    `sim: ${tasks} tasks, log-normal (median 30 s), a tenth of hosts 4x slower, 1% dying, 1% hanging (attempt timeout ${TIMEOUT_MS / 1000} s)`,
  );
  console.log(
    'targets: scheduler <= 25 us/task at 1,000 hosts and <= 1.5x that of 10 hosts; makespan <= 1.1x the bound; < 400 MB',
  );
  console.log(
    'CPU per task done, us: all = the whole process = harness (fake hosts, clock) + signals (an AbortSignal per attempt) + scheduler',
  );
  console.log(
    `"x 10 hosts": the scheduler column against its value at the first size; peak RSS in MB, of the scheduler run and of the harness`,
  );
  console.log(
    `each figure the least CPU of ${runs} runs (other work on the machine only adds to it), with the highest peak`,
  );
  const header = [
    'hosts x slots',
    'speculate',
    'done',
    'all',
    'harness',
    'signals',
    'scheduler',
    'x 10 hosts',
    'peak',
    'harness',
    'makespan s',
    'bound s',
    'ratio',
  ];
  const widths = [13, 9, 6, 5, 7, 7, 9, 10, 4, 7, 10, 7, 5];
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  const first = new Map<boolean, number>();
  for (const hosts of sizes) {
    const floor = run({ hosts, slots, tasks, bare: 'slot', cpuBudgetS: budget });
    const withSignals = run({ hosts, slots, tasks, bare: 'signals', cpuBudgetS: budget });
    const harness = floor.finished ? floor.cpuUsPerTask : NaN;
    const signals = withSignals.finished ? withSignals.cpuUsPerTask - harness : NaN;
    for (const speculate of modes) {
      const r = run({ hosts, slots, tasks, speculate, cpuBudgetS: budget });
      const own = r.cpuUsPerTask - harness - signals;
      if (!first.has(speculate)) first.set(speculate, own);
      const ratio = r.finished ? (r.makespan / r.bound).toFixed(2) : 'n/a';
      console.log(
        line([
          `${hosts} x ${slots}`,
          speculate ? 'on' : 'off',
          String(r.done),
          r.cpuUsPerTask.toFixed(1),
          harness.toFixed(1),
          signals.toFixed(1),
          own.toFixed(1),
          `${(own / first.get(speculate)!).toFixed(2)}x`,
          r.peakRssMb.toFixed(0),
          floor.peakRssMb.toFixed(0),
          r.finished ? r.makespan.toFixed(0) : 'unfinished',
          r.bound.toFixed(0),
          ratio,
        ]) + (r.finished ? '' : `  (stopped after ${budget} s of CPU)`),
      );
    }
  }
}

/**
 * The simulation compiled as the CLI is (esbuild, no tsx): tsx keeps every
 * function's name with a call per closure made, and its loader holds tens
 * of MB, which the shipped code does not pay.
 */
async function compiledChild(): Promise<string> {
  const { build } = await import('esbuild');
  const outfile = join(mkdtempSync(join(tmpdir(), 'distray-sim-')), 'sim.mjs');
  await build({
    entryPoints: [fileURLToPath(import.meta.url)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['esbuild'],
    logLevel: 'warning',
  });
  return outfile;
}

export interface SimOptions {
  hosts: number;
  slots: number;
  tasks: number;
  speculate?: boolean;
  /** Drive the farm with the bare dispatcher instead of the Scheduler (with a signal per slot, or per attempt). */
  bare?: 'slot' | 'signals';
  cpuBudgetS?: number;
  seed?: number;
  /** Tests only: given the Scheduler and its records before any host joins (to listen to its events, which costs the scheduler their making). */
  watch?: (scheduler: Scheduler, records: readonly TaskRecord[]) => void;
}

/** The run that took the least CPU (the simulation is deterministic: only the machine's other work varies), with the highest peak of them. */
function fastestOf(n: number, run: () => SimResult): SimResult {
  const all = Array.from({ length: Math.max(1, n) }, run);
  const best = all.reduce((a, b) => (b.cpuUsPerTask < a.cpuUsPerTask ? b : a));
  return { ...best, peakRssMb: Math.max(...all.map((r) => r.peakRssMb)) };
}

/** Each run in a process of its own: peak memory and the heap's state are that run's alone. */
function inChild(script: string, opts: SimOptions): SimResult {
  const out = execFileSync(process.execPath, [script], {
    env: { ...process.env, SIM_CHILD: JSON.stringify(opts) },
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as SimResult;
}

if (process.env.SIM_CHILD) {
  const r = await simulate(JSON.parse(process.env.SIM_CHILD) as SimOptions);
  console.log(JSON.stringify(r));
}
