import { rm } from 'node:fs/promises';
import PQueue from 'p-queue';
import { errorMessage } from '../errors.js';
import type { Plan, Task } from '../plan/plan.js';
import type { Size } from '../plan/tiles.js';
import type { TaskRecord } from '../scheduler/scheduler.js';
import { isComplete } from '../transfer/complete.js';
import { DirectoryListings } from '../transfer/listing.js';
import { stitchFrame, tileLayout } from './stitch.js';

export interface FrameRecord {
  frame: number;
  tiles: number;
  tilesDone: number;
  output: string;
  status: 'pending' | 'stitched' | 'skipped' | 'failed';
  error?: string | undefined;
}

/**
 * Stitches each frame as soon as its last tile is in, while other frames
 * are still rendering. One frame at a time: a 4K frame and its tiles take
 * a few hundred MB, and the controller has other work to do.
 */
export class FrameStitcher {
  private readonly frames = new Map<number, { record: FrameRecord; tasks: TaskRecord[] }>();
  private readonly queue = new PQueue({ concurrency: 1 });

  constructor(
    private readonly plan: Plan,
    records: readonly TaskRecord[],
    private readonly size: Size,
    private readonly options: {
      keepTiles: boolean;
      note(text: string): void;
      signal?: AbortSignal | undefined;
      /** Told of each frame stitched (or that could not be), once its record says so: the run's frame-stitched event. */
      onFrame?: ((record: Readonly<FrameRecord>) => void) | undefined;
    },
  ) {
    // A stopped run stitches nothing more: frames not yet stitched stay pending (a rerun stitches them from their tiles).
    options.signal?.addEventListener('abort', () => this.queue.clear(), { once: true });
    for (const r of records) {
      let f = this.frames.get(r.task.frame);
      if (!f) {
        f = {
          record: {
            frame: r.task.frame,
            tiles: 0,
            tilesDone: 0,
            output: plan.stitchPath(r.task.frame)!,
            status: 'pending',
          },
          tasks: [],
        };
        this.frames.set(r.task.frame, f);
      }
      f.record.tiles++;
      f.tasks.push(r);
    }
  }

  /** Before the run: a frame whose stitched image is complete needs none of its tiles. */
  async skipComplete(): Promise<void> {
    const listings = new DirectoryListings();
    for (const f of this.frames.values()) {
      if ((await listings.has(f.record.output)) && (await isComplete(f.record.output))) {
        f.record.status = 'skipped';
        f.record.tilesDone = f.record.tiles;
        for (const t of f.tasks) t.status = 'skipped';
      }
    }
  }

  /** Frames whose tiles were all complete already (an interrupted stitch) are stitched now. */
  start(): void {
    for (const f of this.frames.values()) {
      if (f.record.status !== 'pending') continue;
      f.record.tilesDone = f.tasks.filter((t) => t.status === 'skipped').length;
      if (f.record.tilesDone === f.record.tiles) this.enqueue(f.record.frame);
    }
  }

  /** Checks a tile's image as soon as it lands, so a wrong size fails that attempt (and is retried). */
  async verifyTile(task: Task, host: string): Promise<void> {
    const path = this.plan.tileImage(task);
    if (!path || !task.tile) return;
    try {
      await tileLayout({ tile: task.tile, path, host }, this.size);
    } catch (err) {
      await rm(path, { force: true });
      throw err;
    }
  }

  tileDone(rec: TaskRecord): void {
    const f = this.frames.get(rec.task.frame);
    if (!f || f.record.status !== 'pending') return;
    f.record.tilesDone++;
    if (f.record.tilesDone === f.record.tiles) this.enqueue(rec.task.frame);
  }

  private enqueue(frame: number): void {
    const f = this.frames.get(frame)!;
    void this.queue.add(async () => {
      const tiles = f.tasks.map((r) => ({
        tile: r.task.tile!,
        path: this.plan.tileImage(r.task)!,
        host: r.host ?? undefined,
      }));
      try {
        if (this.options.signal?.aborted) return;
        await stitchFrame(tiles, this.size, f.record.output, this.options.signal);
        f.record.status = 'stitched';
        this.options.note(`frame ${frame} stitched from ${tiles.length} tiles into ${f.record.output}`);
        this.options.onFrame?.(f.record);
        if (!this.options.keepTiles) await Promise.all(tiles.map((t) => rm(t.path, { force: true })));
      } catch (err) {
        if (this.options.signal?.aborted) return;
        f.record.status = 'failed';
        f.record.error = errorMessage(err);
        this.options.note(`frame ${frame} could not be stitched: ${f.record.error}`);
        this.options.onFrame?.(f.record);
      }
    });
  }

  idle(): Promise<void> {
    return this.queue.onIdle();
  }

  records(): FrameRecord[] {
    return [...this.frames.values()].map((f) => f.record);
  }
}
