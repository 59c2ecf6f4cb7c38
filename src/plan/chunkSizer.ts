import type { Task } from './plan.js';
import { DEFAULT_CHUNK_TARGET_MS, MAX_CHUNK, runsOf, type ChunkSize } from './chunks.js';

/** How much of the past a new measurement leaves in the fit: older chunks fade, so a change of pace shows. */
const KEEP = 0.7;

/**
 * A chunk's time as a start-up plus a time per frame, `ms = startup +
 * perFrame * frames`, fitted by least squares to the chunks measured (the
 * older ones weighing less). Until chunks of two sizes are measured, the
 * start-up cannot be told from the frames: the time per frame is the
 * whole time over the frames then.
 */
class Pace {
  private w = 0;
  private n = 0;
  private t = 0;
  private nn = 0;
  private nt = 0;

  add(frames: number, ms: number): void {
    this.w = this.w * KEEP + 1;
    this.n = this.n * KEEP + frames;
    this.t = this.t * KEEP + ms;
    this.nn = this.nn * KEEP + frames * frames;
    this.nt = this.nt * KEEP + frames * ms;
  }

  /** Frames that fill `targetMs`, or undefined before any measurement. */
  framesIn(targetMs: number): number | undefined {
    if (this.w === 0) return undefined;
    const spread = this.w * this.nn - this.n * this.n;
    // Sizes measured all (nearly) alike: no start-up can be told apart.
    if (spread > 1e-9 * this.w * this.nn) {
      const perFrame = (this.w * this.nt - this.n * this.t) / spread;
      const startup = (this.t - perFrame * this.n) / this.w;
      if (perFrame > 0 && startup >= 0) return (targetMs - startup) / perFrame;
    }
    return targetMs / Math.max(this.t / this.n, 1e-3);
  }
}

/**
 * Decides how many frames each task takes as slots take them: a fixed N, or
 * with `auto` as many as fill about `targetMs` (the host's own pace once it
 * has one, else the farm's, else 1 frame: the first tasks measure). The
 * pace is a start-up plus a time per frame (see Pace): a first chunk of one
 * frame measures the two together, the next, larger one tells them apart.
 * Nothing here touches a clock: the scheduler reports times.
 */
export class ChunkSizer {
  private readonly farm = new Pace();
  private readonly hosts = new Map<string, Pace>();

  constructor(
    private readonly make: (first: number, count: number, index: number) => Task,
    private readonly size: ChunkSize,
    private readonly targetMs: number = DEFAULT_CHUNK_TARGET_MS,
  ) {}

  /** Frames a task of `host` takes now (every host's typical one without a name). */
  frames(host?: string): number {
    if (this.size !== 'auto') return this.size;
    const n =
      (host === undefined ? undefined : this.hosts.get(host)?.framesIn(this.targetMs)) ??
      this.farm.framesIn(this.targetMs);
    if (n === undefined) return 1;
    return Math.max(1, Math.min(MAX_CHUNK, Math.round(n)));
  }

  /** Scheduler hook: the part of a queued chunk a slot of `host` takes, or undefined to take it whole. */
  carve(task: Task, host: string, index: number): { taken: Task; rest: Task } | undefined {
    const c = task.chunk;
    const n = this.frames(host);
    if (!c || c.count <= n) return undefined;
    return { taken: this.make(c.first, n, index), rest: this.make(c.first + n * c.step, c.count - n, task.index) };
  }

  /** Scheduler hook: a task whose renderer ran `ms` on `host` and produced all its frames. */
  timed(task: Task, host: string, ms: number): void {
    const frames = task.chunk?.count ?? 1;
    let pace = this.hosts.get(host);
    if (!pace) this.hosts.set(host, (pace = new Pace()));
    pace.add(frames, ms);
    this.farm.add(frames, ms);
  }

  /** Scheduler hook: a chunk split into its runs of frames done and not, the first run keeping its index. */
  split(task: Task, done: ReadonlySet<number>, next: () => number): Array<{ task: Task; done: boolean }> {
    const c = task.chunk ?? { first: task.frame, count: 1, step: 1 };
    return runsOf(c, (f) => done.has(f)).map((r, i) => ({
      task: this.make(r.first, r.count, i === 0 ? task.index : next()),
      done: r.done,
    }));
  }
}
