import { existsSync } from 'node:fs';
import type { HostConfig } from '../inventory/types.js';
import type { Plan } from '../plan/plan.js';
import type { TaskRecord } from '../scheduler/scheduler.js';
import type { HostFigures } from '../fold/hostFigures.js';
import type { TaskFold } from '../fold/taskFold.js';
import { lastOf } from '../plan/chunks.js';
import { RunModel } from './model.js';
import { isImage } from './thumbs.js';

/** The model of the live page and the HTML report, over the plan's tasks as they stand before the run. */
export function modelOfPlan(
  plan: Plan,
  hosts: readonly HostConfig[],
  run: {
    startedAt: Date;
    clockOrigin: number;
    records: readonly TaskRecord[];
    title: string;
    fold?: TaskFold;
    figures?: HostFigures;
    now?: () => number;
  },
): RunModel {
  return new RunModel({
    title: run.title,
    startedAt: run.startedAt,
    origin: run.clockOrigin,
    perFrame: plan.stitching,
    unit: plan.tiled ? 'tiles' : 'frames',
    ...(run.fold ? { fold: run.fold } : {}),
    ...(run.figures ? { figures: run.figures } : {}),
    ...(run.now ? { now: run.now } : {}),
    hosts: hosts.map((h) => ({ name: h.name, slots: h.slots })),
    tasks: run.records.map((r) => ({
      index: r.task.index,
      frame: r.task.frame,
      tile: r.task.tile?.index ?? null,
      label: r.task.label,
      skipped: r.status === 'skipped',
      ...(r.task.chunk ? { count: r.task.chunk.count, last: lastOf(r.task.chunk) } : {}),
      image: plan.stitchPath(r.task.frame) !== undefined || plan.localOutputs(r.task).some(isImage),
    })),
  });
}

/**
 * The picture of task `i`: its frame once stitched, else its own first image
 * output. With --chunk a task is one of the run's `records` (formed as the
 * run goes): its first frame's picture.
 */
export function pictureOf(plan: Plan, i: number, records?: readonly TaskRecord[]): string | undefined {
  const task = plan.chunked ? records?.[i]?.task : plan.tasks[i];
  if (!task) return undefined;
  const stitched = plan.stitchPath(task.frame);
  if (stitched !== undefined && existsSync(stitched)) return stitched;
  return plan.localOutputs(task).find(isImage);
}

/**
 * With --chunk: the picture of one frame (its stitched frame, else its own
 * first image output), for the contact sheet's picture of every frame a
 * chunk finished. The plan's tasks are looked up by frame once, when first asked.
 */
export function framePictures(plan: Plan): (frame: number) => string | undefined {
  let byFrame: Map<number, Plan['tasks'][number]> | undefined;
  return (frame) => {
    byFrame ??= new Map(plan.tasks.map((t) => [t.frame, t]));
    const task = byFrame.get(frame);
    if (!task) return undefined;
    const stitched = plan.stitchPath(frame);
    if (stitched !== undefined && existsSync(stitched)) return stitched;
    return plan.localOutputs(task).find(isImage);
  };
}
