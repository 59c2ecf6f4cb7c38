import { UsageError } from '../errors.js';
import { chunkLabel, framesOfChunk, lastOf, type Chunk, type ChunkSize } from './chunks.js';
import { MAX_FRAMES, framesOf, type FrameSpec } from './frames.js';
import { checkRemotePath, entryProblem, entrySuggestion, splitCopySpec } from './paths.js';
import {
  CHUNK_NAMES,
  HOST_NAMES,
  TASK_NAMES,
  TILE_NAMES,
  expand,
  parseTemplate,
  usesAny,
  type Template,
  type Vars,
} from './placeholders.js';
import { namesOf, type Expr, type Value } from './expression.js';
import { tilesOf, type Grid, type Size, type Tile } from './tiles.js';

export interface PlanOptions {
  frames: FrameSpec;
  exec: string;
  args: readonly string[];
  ins: readonly string[];
  outs: readonly string[];
  /** --tiles and --size, with --tile-align's N as `align` (1 when not given). */
  tiles?: { grid: Grid; size: Size; align?: number | undefined } | undefined;
  stitch?: string | undefined;
  /** Every host's name: `%{host}` is checked against each of them. */
  hostNames: readonly string[];
  /** --chunk: tasks of N consecutive frames, or of as many as fill --chunk-target. */
  chunk?: ChunkSize | undefined;
}

/** A copy between a local path and a path relative to the host's workdir. */
export interface Copy {
  local: string;
  remote: string;
  /** An --out whose SRC ends with "/": a directory, copied back whole. Every other output is a regular file. */
  dir?: boolean;
}

export interface Task {
  /** Position in the plan; stable across reruns of the same command. */
  readonly index: number;
  readonly frame: number;
  readonly tile: Tile | null;
  /** "frame 7" or "frame 7 tile 3": how messages name the task. */
  readonly label: string;
  readonly vars: Vars;
  /** With --chunk: the frames it renders (`frame` is the first of them). */
  readonly chunk?: Chunk | undefined;
}

/**
 * A task as the plan keeps it: its frame and tile, and nothing derived. A run
 * can hold a million of them for its whole length, so the label and the
 * placeholder values are made when asked for.
 */
class PlannedTask implements Task {
  constructor(
    readonly index: number,
    readonly frame: number,
    readonly tile: Tile | null,
    private readonly size: Size | undefined,
  ) {}

  get label(): string {
    return this.tile ? `frame ${this.frame} tile ${this.tile.index}` : `frame ${this.frame}`;
  }

  get vars(): Vars {
    const t = this.tile;
    if (!t || !this.size) return { frame: this.frame };
    return {
      frame: this.frame,
      tile: t.index,
      tiles: t.count,
      x0: t.x0,
      y0: t.y0,
      x1: t.x1,
      y1: t.y1,
      w: t.x1 - t.x0,
      h: t.y1 - t.y0,
      width: this.size.width,
      height: this.size.height,
    };
  }
}

/**
 * A frame of a chunked run, as the plan keeps it before chunks are formed
 * (finding complete outputs goes frame by frame): a chunk of its own.
 */
class PlannedFrame extends PlannedTask {
  override get vars(): Vars {
    return { frame: this.frame, first: this.frame, last: this.frame, count: 1 };
  }
}

/** A task of --chunk: consecutive frames, in one command. */
class ChunkTask implements Task {
  readonly tile = null;
  constructor(
    readonly index: number,
    readonly chunk: Chunk,
  ) {}

  get frame(): number {
    return this.chunk.first;
  }

  get label(): string {
    return chunkLabel(this.chunk);
  }

  get vars(): Vars {
    return { frame: this.chunk.first, first: this.chunk.first, last: lastOf(this.chunk), count: this.chunk.count };
  }
}

interface CopyTemplate {
  option: '--in' | '--out';
  src: Template;
  dest: Template;
  perTask: boolean;
}

const TASK_SCOPED = [...TASK_NAMES, ...TILE_NAMES, ...CHUNK_NAMES];

/** Tasks in one run, tiles included: as many as frames may be. A million plan in a second or two. */
export const MAX_TASKS = MAX_FRAMES;

const computes = (e: Expr): boolean => e.kind === 'bin' || (e.kind === 'neg' && computes(e.operand));

/**
 * Can this template fail for some tasks and not others? Only arithmetic on a
 * task's values can (a division by zero, a result too large to print). Its
 * shape cannot change: a placeholder always becomes a number, which is
 * never empty and never holds "/" or is "." or "..", so the first task's
 * paths pass the path rules exactly when every task's do.
 */
function mayFailPerTask(t: Template): boolean {
  return t.parts.some((p) => p.kind === 'expr' && computes(p.expr) && TASK_SCOPED.some((n) => namesOf(p.expr).has(n)));
}

/** Widths of %0Nd past any frame number's digits: %0999999999d made a string too long for V8. */
const MAX_PAD = 32;

function checkPadding(t: Template, where: string): Template {
  for (const p of t.parts) {
    if (p.kind === 'frame' && p.width > MAX_PAD) {
      throw new UsageError(`${where} "${t.source}": %0${p.width}d pads to ${p.width} digits; at most ${MAX_PAD}`);
    }
  }
  return t;
}

const isName = (p: Template['parts'][number], name: string): boolean =>
  p.kind === 'expr' && p.expr.kind === 'name' && p.expr.name === name;
const digitsOnly = /^[0-9]*$/;

/**
 * Does this template give every task its own path, by construction? One %d
 * (or %0Nd) does when the run has no tiles: distinct numbers give distinct
 * digits, and the text around them is the same for every frame. With tiles,
 * one %d and one %{tile} do when the text between them holds a character
 * that is not a digit (as in f%04d-t%{tile}.png or %d-%{tile}): that is
 * where one number ends and the other begins.
 */
function distinctPerTask(t: Template, tiled: boolean): boolean {
  const frames = t.parts.filter((p) => p.kind === 'frame' || isName(p, 'frame'));
  const others = t.parts.filter((p) => p.kind === 'expr' && !isName(p, 'frame'));
  if (frames.length !== 1) return false;
  if (!tiled) return others.length === 0;
  if (others.length !== 1 || !isName(others[0]!, 'tile')) return false;
  // A tile number has no "-" and a frame's "-" can only lead it, so any text but digits tells them apart.
  const a = t.parts.indexOf(frames[0]!);
  const b = t.parts.indexOf(others[0]!);
  const between = t.parts.slice(Math.min(a, b) + 1, Math.max(a, b));
  return between.some((p) => p.kind === 'text' && !digitsOnly.test(p.text));
}

/**
 * The pure plan of a run: frames x tiles -> tasks, with every placeholder and
 * path checked for every task before anything connects.
 */
export class Plan {
  readonly exec: string;
  readonly tasks: readonly Task[];
  readonly tiled: boolean;
  /** --chunk's N or auto; undefined for a task per frame. */
  readonly chunking: ChunkSize | undefined;
  /** The frame spec's step: a chunk's frames are this far apart. */
  readonly step: number;
  private readonly args: Template[];
  private readonly copies: CopyTemplate[];
  private readonly stitchTemplate: Template | undefined;
  private readonly hostNames: readonly string[];
  /** The copies by kind, sorted once: asked for per task, per attempt. */
  private readonly perTaskIns: CopyTemplate[];
  private readonly perTaskOuts: CopyTemplate[];
  private readonly perHostIns: CopyTemplate[];
  private readonly perHostOuts: CopyTemplate[];

  constructor(opts: PlanOptions) {
    const allowed = new Set<string>([
      ...TASK_NAMES,
      ...HOST_NAMES,
      ...(opts.tiles ? TILE_NAMES : []),
      ...(opts.chunk !== undefined ? CHUNK_NAMES : []),
    ]);
    this.exec = opts.exec;
    this.tiled = opts.tiles !== undefined;
    this.chunking = opts.chunk;
    this.step = opts.frames.step;
    if (opts.chunk !== undefined && opts.tiles) {
      throw new UsageError(
        '--chunk and --tiles together: a task is either several whole frames or one tile of a frame; drop one of them',
      );
    }
    this.hostNames = opts.hostNames.length > 0 ? opts.hostNames : ['host'];
    if (opts.exec === '') throw new UsageError('<exec> is empty: name the program to run on each host');
    if (opts.exec.includes('/') && !opts.exec.startsWith('/')) checkRemotePath(opts.exec, '<exec>');

    this.args = opts.args.map((a, i) =>
      checkPadding(parseTemplate(a, `argument ${i + 1}`, allowed), `argument ${i + 1}`),
    );
    if (this.chunked) {
      const perFrame = this.args.find((a) => a.names.has('frame'));
      if (perFrame) {
        throw new UsageError(
          `${perFrame.where} "${perFrame.source}": with --chunk a task renders several frames, so %d (or %{frame}) has no one value; ` +
            'use %{first}, %{last} and %{count} (Blender: -s %{first} -e %{last} -a)',
        );
      }
    }
    this.copies = [
      ...opts.ins.map((spec) => this.copyTemplate('--in', spec, allowed)),
      ...opts.outs.map((spec) => this.copyTemplate('--out', spec, allowed)),
    ];
    this.perTaskIns = this.copies.filter((c) => c.perTask && c.option === '--in');
    this.perTaskOuts = this.copies.filter((c) => c.perTask && c.option === '--out');
    this.perHostIns = this.copies.filter((c) => !c.perTask && c.option === '--in');
    this.perHostOuts = this.copies.filter((c) => !c.perTask && c.option === '--out');
    const frames = framesOf(opts.frames);
    if (opts.stitch !== undefined) {
      if (!opts.tiles) throw new UsageError('--stitch needs --tiles (and --size)');
      this.stitchTemplate = checkPadding(parseTemplate(opts.stitch, '--stitch', new Set([...TASK_NAMES])), '--stitch');
      if (!this.stitchTemplate.names.has('frame') && frames.length > 1) {
        throw new UsageError(
          `--stitch "${opts.stitch}" has no frame placeholder (%d, %04d) but the run has several frames`,
        );
      }
    }

    const size = opts.tiles?.size;
    const tiles = opts.tiles ? tilesOf(opts.tiles.grid, opts.tiles.size, opts.tiles.align) : [null];
    if (frames.length * tiles.length > MAX_TASKS) {
      throw new UsageError(
        `${frames.length} frames of ${tiles.length} tiles make ${frames.length * tiles.length} tasks; at most ${MAX_TASKS} are allowed in one run (split it into several runs, or use fewer tiles)`,
      );
    }
    const tasks: Task[] = new Array<Task>(frames.length * tiles.length);
    let index = 0;
    if (this.chunked) for (const frame of frames) tasks[index] = new PlannedFrame(index++, frame, null, undefined);
    else
      for (const frame of frames) for (const tile of tiles) tasks[index] = new PlannedTask(index++, frame, tile, size);
    this.tasks = tasks;
    this.validate(frames);
    if (this.stitchTemplate && this.tasks[0] && this.tileImage(this.tasks[0]) === undefined) {
      throw new UsageError(
        '--stitch needs the tiles back: add an --out whose local path is a per-tile image, such as --out tile.png=tiles/f%04d-t%{tile}.png',
      );
    }
  }

  private copyTemplate(option: '--in' | '--out', spec: string, allowed: Set<string>): CopyTemplate {
    const { src, dest } = splitCopySpec(spec, option);
    if (!spec.includes('=') && (src.startsWith('/') || src.startsWith('~'))) {
      // DEST defaults to SRC, and a remote path cannot be absolute: name the host's side instead of "remove the /".
      const name = src.replace(/\/+$/, '').split('/').at(-1) || 'input';
      throw new UsageError(
        option === '--in'
          ? `--in "${spec}": without =DEST the copy would go to the same absolute path on the host, but remote paths are relative to its workdir; write --in ${src}=${name}`
          : `--out "${spec}": the host's side must be relative to its workdir; write --out ${name}=${src}`,
      );
    }
    const t: CopyTemplate = {
      option,
      src: checkPadding(parseTemplate(src, option, allowed), option),
      dest: checkPadding(parseTemplate(dest, option, allowed), option),
      perTask: false,
    };
    t.perTask = usesAny(t.src, TASK_SCOPED) || usesAny(t.dest, TASK_SCOPED);
    if (option === '--out' && (usesAny(t.src, CHUNK_NAMES) || usesAny(t.dest, CHUNK_NAMES))) {
      throw new UsageError(
        `--out "${spec}": an output is one frame's (%d), whatever chunk rendered it, so that a chunk that stopped half-way and a rerun know which frames are done; remove %{first}, %{last} and %{count} from it`,
      );
    }
    if (option === '--out' && t.perTask && t.dest.names.has('host')) {
      throw new UsageError(
        `--out "${spec}": a frame's local output must not depend on the host that rendered it (remove %{host}), or a rerun could not find it`,
      );
    }
    if (option === '--out' && !t.perTask && !t.dest.names.has('host')) {
      throw new UsageError(
        `--out "${spec}" has no frame placeholder, so it is copied once from every host: its DEST must contain %{host}, such as ${dest}.%{host}`,
      );
    }
    return t;
  }

  /**
   * Expands every template that can fail or change shape for some task (for
   * each host where `%{host}` is used) so errors surface now. A template of
   * text and %d expands alike for every task: the first task stands for all.
   */
  private validate(frames: readonly number[]): void {
    const hosts = this.hostNames;
    const usesHost =
      this.args.some((a) => a.names.has('host')) ||
      this.copies.some((c) => c.src.names.has('host') || c.dest.names.has('host'));
    const sample = usesHost ? hosts : hosts.slice(0, 1);
    // With a fixed --chunk N, the first task is a chunk of N frames (%{count} is N there, not 1).
    const n = typeof this.chunking === 'number' ? Math.min(this.chunking, frames.length) : 0;
    const first = n > 0 ? this.chunkTask(frames[0]!, n, 0) : this.tasks[0];
    for (const host of sample) {
      for (const c of this.copies.filter((c) => !c.perTask)) this.expandCopy(c, { host });
      if (!first) continue;
      this.argv(first, host);
      for (const c of this.copies.filter((c) => c.perTask)) this.expandCopy(c, { ...first.vars, host });
      const all = [...this.args, ...this.copies.filter((c) => c.perTask).flatMap((c) => [c.src, c.dest])].filter(
        mayFailPerTask,
      );
      // A chunk's values are known only for a fixed N (auto sizes them as the run goes): checked for every chunk of a first run then.
      const byChunk = all.filter((t) => usesAny(t, CHUNK_NAMES));
      const templates = all.filter((t) => !usesAny(t, CHUNK_NAMES));
      if (byChunk.length > 0 && typeof this.chunking === 'number') {
        for (let i = 0; i < frames.length; i += this.chunking) {
          const chunk = this.chunkTask(frames[i]!, Math.min(this.chunking, frames.length - i), 0);
          this.argv(chunk, host);
          this.taskIns(chunk, host);
        }
      }
      if (templates.length === 0) continue;
      for (const task of this.tasks) {
        // A task's vars are a fresh object each time: adding the host to it saves a copy per task.
        const vars = task.vars as Record<string, Value>;
        vars.host = host;
        for (const t of templates) expand(t, vars);
      }
    }
    for (const c of this.perTaskOuts) this.checkDistinctOutputs(c);
    if (this.stitchTemplate) {
      for (const frame of mayFailPerTask(this.stitchTemplate) ? frames : frames.slice(0, 1)) {
        const path = expand(this.stitchTemplate, { frame });
        const problem = entryProblem(path);
        if (problem !== undefined)
          throw new UsageError(
            `--stitch "${this.stitchTemplate.source}": "${path}" ${problem}; name the image file to write, such as frames/f%04d.png`,
          );
      }
    }
  }

  /** Two tasks writing one local file would overwrite each other's output. */
  private checkDistinctOutputs(c: CopyTemplate): void {
    if (distinctPerTask(c.dest, this.tiled)) return;
    // The task's index, not its label: a million labels would be a hundred MB.
    const seen = new Map<string, number>();
    for (const task of this.tasks) {
      const local = expand(c.dest, task.vars);
      const other = seen.get(local);
      if (other !== undefined) {
        throw new UsageError(
          `--out "${c.dest.source}": ${this.tasks[other]!.label} and ${task.label} would both write ${local}; ${this.distinctHint(c.dest)}`,
        );
      }
      seen.set(local, task.index);
    }
  }

  private distinctHint(t: Template): string {
    const needed = this.tiled ? ['frame', 'tile'] : ['frame'];
    const missing = needed.filter((n) => !t.names.has(n));
    if (missing.length > 0) return `add ${missing.map((n) => (n === 'frame' ? '%d' : '%{tile}')).join(' and ')} to it`;
    return `keep the numbers apart, such as ${this.tiled ? 'f%04d-t%{tile}' : 'f%04d'}`;
  }

  /** `all` holds the task's values and `host`. */
  private expandCopy(c: CopyTemplate, all: Vars): Copy {
    const src = expand(c.src, all);
    const dest = expand(c.dest, all);
    // An output ending with "/" is a directory (both sides); any other is a regular file.
    const dir = c.option === '--out' && src.endsWith('/') && src.replace(/\/+$/, '') !== '';
    const trim = (p: string): string => (dir ? p.replace(/\/+$/, '') || p : p);
    const copy: Copy =
      c.option === '--in'
        ? { local: src, remote: dest }
        : { local: trim(dest), remote: trim(src), ...(dir ? { dir } : {}) };
    checkRemotePath(copy.remote, c.option === '--in' ? `--in DEST` : `--out SRC`);
    if (copy.local === '') throw new UsageError(`${c.option} "${c.src.source}": the local path is empty`);
    // What a copy writes must be one entry: on the host for --in, here for --out.
    const written = c.option === '--in' ? copy.remote : copy.local;
    const problem = entryProblem(written);
    if (problem !== undefined) {
      const spec = c.src.source === c.dest.source ? c.src.source : `${c.src.source}=${c.dest.source}`;
      const side = c.option === '--in' ? 'its DEST, the path on the host,' : 'its DEST, the local path,';
      // Spelt with the user's placeholders, not this task's values.
      const fixed = entrySuggestion(c.dest.source, c.src.source);
      throw new UsageError(
        `${c.option} "${spec}": ${side} "${written}" ${problem}; DEST must name the file or directory the copy creates, ` +
          `such as ${c.option} ${c.src.source}=${fixed}`,
      );
    }
    if (c.option === '--out') {
      const remoteProblem = entryProblem(copy.remote);
      if (remoteProblem !== undefined) {
        throw new UsageError(
          `--out "${c.src.source}": its SRC, the path on the host, "${copy.remote}" ${remoteProblem}; name the file or directory the renderer writes inside the workdir`,
        );
      }
    }
    return copy;
  }

  argv(task: Task, host: string): string[] {
    const vars = { ...task.vars, host };
    return [this.exec, ...this.args.map((a) => expand(a, vars))];
  }

  get chunked(): boolean {
    return this.chunking !== undefined;
  }

  /** A task of the consecutive frames first, first + step, ... (`count` of them); `index` is its place among the run's tasks. */
  chunkTask(first: number, count: number, index: number): Task {
    return new ChunkTask(index, { first, count, step: this.step });
  }

  /** The frames a task renders: a chunk's, or its one frame. */
  framesOf(task: Task): number[] {
    return task.chunk ? framesOfChunk(task.chunk) : [task.frame];
  }

  /** A chunk's values with one of its frames: what a per-frame copy of a chunk expands with. */
  private frameVars(task: Task, frame: number, host: string): Vars {
    return { ...task.vars, frame, host };
  }

  /** An --in with %d is made for each frame of a chunk; one with only %{first}, %{last}, %{count} once per chunk. */
  taskIns(task: Task, host: string): Copy[] {
    const all = { ...task.vars, host };
    if (!task.chunk) return this.perTaskIns.map((c) => this.expandCopy(c, all));
    const frames = framesOfChunk(task.chunk);
    return this.perTaskIns.flatMap((c) =>
      usesAny(c.src, TASK_NAMES) || usesAny(c.dest, TASK_NAMES)
        ? frames.map((f) => this.expandCopy(c, this.frameVars(task, f, host)))
        : [this.expandCopy(c, all)],
    );
  }

  /** Every output of the task: a chunk's, frame after frame (see frameOuts). */
  taskOuts(task: Task, host: string): Copy[] {
    if (!task.chunk) {
      const all = { ...task.vars, host };
      return this.perTaskOuts.map((c) => this.expandCopy(c, all));
    }
    return this.frameOuts(task, host).flatMap((f) => f.copies);
  }

  /** A task's outputs by frame: a frame of a chunk is done when all of its own are in. */
  frameOuts(task: Task, host: string): Array<{ frame: number; copies: Copy[] }> {
    return this.framesOf(task).map((frame) => ({
      frame,
      copies: this.perTaskOuts.map((c) => this.expandCopy(c, this.frameVars(task, frame, host))),
    }));
  }

  hostIns(host: string): Copy[] {
    return this.perHostIns.map((c) => this.expandCopy(c, { host }));
  }

  hostOuts(host: string): Copy[] {
    return this.perHostOuts.map((c) => this.expandCopy(c, { host }));
  }

  /** Every local input the run reads, for checking they exist before connecting. */
  localInputs(): string[] {
    const paths = new Set<string>();
    for (const c of this.copies.filter((c) => c.option === '--in')) {
      const hosts = c.src.names.has('host') ? this.hostNames : this.hostNames.slice(0, 1);
      for (const host of hosts) {
        if (!c.perTask) paths.add(expand(c.src, { host }));
        else if (!usesAny(c.src, TASK_SCOPED)) paths.add(expand(c.src, { host }));
        // A chunk's own input (%{first}...) exists only for the chunks a run forms: a missing one fails its task when it is sent.
        else if (usesAny(c.src, CHUNK_NAMES)) continue;
        else for (const t of this.tasks) paths.add(expand(c.src, { ...t.vars, host }));
      }
    }
    return [...paths];
  }

  /** The local files that prove a task done: its per-task outputs (host-independent by construction, and checked already). */
  localOutputs(task: Task): string[] {
    if (this.perTaskOuts.length === 0) return [];
    const vars = task.vars;
    // A directory output (its SRC ends with "/") keeps a "/", so a rerun knows a file there is not it.
    return this.perTaskOuts.map((c) => {
      const local = expand(c.dest, vars);
      return c.src.source.endsWith('/') ? `${local.replace(/\/+$/, '')}/` : local;
    });
  }

  /** Whether any task has a local output to find on a rerun. */
  get hasLocalOutputs(): boolean {
    return this.perTaskOuts.length > 0;
  }

  /**
   * Per-task copies whose remote path is the same for every task: two tasks
   * running at once on one host would write the same file.
   */
  sharedRemotePaths(): string[] {
    return this.copies
      .filter((c) => c.perTask && !usesAny(c.option === '--in' ? c.dest : c.src, TASK_SCOPED))
      .map((c) => `${c.option} ${c.src.source}${c.src.source === c.dest.source ? '' : `=${c.dest.source}`}`);
  }

  /** With --stitch: the local file of a tile's image, the first per-task --out that is an image. */
  tileImage(task: Task): string | undefined {
    return this.localOutputs(task).find((p) => /\.(png|tiff?|jpe?g|webp|exr|gif|avif)$/i.test(p));
  }

  get stitching(): boolean {
    return this.stitchTemplate !== undefined;
  }

  stitchPath(frame: number): string | undefined {
    return this.stitchTemplate ? expand(this.stitchTemplate, { frame }) : undefined;
  }
}
