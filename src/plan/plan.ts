import { UsageError } from '../errors.js';
import { framesOf, type FrameSpec } from './frames.js';
import { checkRemotePath, entryProblem, entrySuggestion, splitCopySpec } from './paths.js';
import {
  HOST_NAMES,
  TASK_NAMES,
  TILE_NAMES,
  expand,
  parseTemplate,
  usesAny,
  type Template,
  type Vars,
} from './placeholders.js';
import { tilesOf, type Grid, type Size, type Tile } from './tiles.js';

export interface PlanOptions {
  frames: FrameSpec;
  exec: string;
  args: readonly string[];
  ins: readonly string[];
  outs: readonly string[];
  tiles?: { grid: Grid; size: Size } | undefined;
  stitch?: string | undefined;
  /** Every host's name: `%{host}` is checked against each of them. */
  hostNames: readonly string[];
}

/** A copy between a local path and a path relative to the host's workdir. */
export interface Copy {
  local: string;
  remote: string;
}

export interface Task {
  /** Position in the plan; stable across reruns of the same command. */
  index: number;
  frame: number;
  tile: Tile | null;
  /** "frame 7" or "frame 7 tile 3": how messages name the task. */
  label: string;
  vars: Vars;
}

interface CopyTemplate {
  option: '--in' | '--out';
  src: Template;
  dest: Template;
  perTask: boolean;
}

const TASK_SCOPED = [...TASK_NAMES, ...TILE_NAMES];

/**
 * The pure plan of a run: frames x tiles -> tasks, with every placeholder and
 * path checked for every task before anything connects.
 */
export class Plan {
  readonly exec: string;
  readonly tasks: readonly Task[];
  readonly tiled: boolean;
  private readonly args: Template[];
  private readonly copies: CopyTemplate[];
  private readonly stitchTemplate: Template | undefined;
  private readonly hostNames: readonly string[];

  constructor(opts: PlanOptions) {
    const allowed = new Set<string>([...TASK_NAMES, ...HOST_NAMES, ...(opts.tiles ? TILE_NAMES : [])]);
    this.exec = opts.exec;
    this.tiled = opts.tiles !== undefined;
    this.hostNames = opts.hostNames.length > 0 ? opts.hostNames : ['host'];
    if (opts.exec === '') throw new UsageError('<exec> is empty: name the program to run on each host');
    if (opts.exec.includes('/') && !opts.exec.startsWith('/')) checkRemotePath(opts.exec, '<exec>');

    this.args = opts.args.map((a, i) => parseTemplate(a, `argument ${i + 1}`, allowed));
    this.copies = [
      ...opts.ins.map((spec) => this.copyTemplate('--in', spec, allowed)),
      ...opts.outs.map((spec) => this.copyTemplate('--out', spec, allowed)),
    ];
    if (opts.stitch !== undefined) {
      if (!opts.tiles) throw new UsageError('--stitch needs --tiles (and --size)');
      this.stitchTemplate = parseTemplate(opts.stitch, '--stitch', new Set([...TASK_NAMES]));
      if (!this.stitchTemplate.names.has('frame') && framesOf(opts.frames).length > 1) {
        throw new UsageError(`--stitch "${opts.stitch}" has no frame placeholder (%d, %04d) but the run has several frames`);
      }
    }

    const tiles = opts.tiles ? tilesOf(opts.tiles.grid, opts.tiles.size) : [null];
    const tasks: Task[] = [];
    for (const frame of framesOf(opts.frames)) {
      for (const tile of tiles) {
        const vars: Record<string, number> = { frame };
        if (tile && opts.tiles) {
          Object.assign(vars, {
            tile: tile.index,
            tiles: tile.count,
            x0: tile.x0,
            y0: tile.y0,
            x1: tile.x1,
            y1: tile.y1,
            w: tile.x1 - tile.x0,
            h: tile.y1 - tile.y0,
            width: opts.tiles.size.width,
            height: opts.tiles.size.height,
          });
        }
        const label = tile ? `frame ${frame} tile ${tile.index}` : `frame ${frame}`;
        tasks.push({ index: tasks.length, frame, tile, label, vars });
      }
    }
    this.tasks = tasks;
    this.validate();
    if (this.stitchTemplate && this.tasks[0] && this.tileImage(this.tasks[0]) === undefined) {
      throw new UsageError(
        '--stitch needs the tiles back: add an --out whose local path is a per-tile image, such as --out tile.png=tiles/f%04d-t%{tile}.png',
      );
    }
  }

  private copyTemplate(option: '--in' | '--out', spec: string, allowed: Set<string>): CopyTemplate {
    const { src, dest } = splitCopySpec(spec, option);
    const t: CopyTemplate = {
      option,
      src: parseTemplate(src, option, allowed),
      dest: parseTemplate(dest, option, allowed),
      perTask: false,
    };
    t.perTask = usesAny(t.src, TASK_SCOPED) || usesAny(t.dest, TASK_SCOPED);
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

  /** Expands every template of every task (for each host where `%{host}` is used) so errors surface now. */
  private validate(): void {
    const hosts = this.hostNames;
    const usesHost = this.args.some((a) => a.names.has('host')) || this.copies.some((c) => c.src.names.has('host') || c.dest.names.has('host'));
    const sample = usesHost ? hosts : hosts.slice(0, 1);
    const seenOutputs = new Map<string, string>();
    for (const host of sample) {
      for (const c of this.copies.filter((c) => !c.perTask)) this.expandCopy(c, {}, host);
      for (const task of this.tasks) {
        this.argv(task, host);
        for (const c of this.copies.filter((c) => c.perTask)) {
          const copy = this.expandCopy(c, task.vars, host);
          if (c.option !== '--out') continue;
          const other = seenOutputs.get(copy.local);
          if (other !== undefined && other !== task.label) {
            throw new UsageError(
              `--out "${c.dest.source}": ${other} and ${task.label} would both write ${copy.local}; add ${this.tiled ? '%{tile}' : '%d'} to it`,
            );
          }
          seenOutputs.set(copy.local, task.label);
        }
      }
    }
    if (this.stitchTemplate) {
      for (const t of this.tasks) {
        const path = expand(this.stitchTemplate, t.vars);
        const problem = entryProblem(path);
        if (problem !== undefined) throw new UsageError(`--stitch "${this.stitchTemplate.source}": "${path}" ${problem}; name the image file to write, such as frames/f%04d.png`);
      }
    }
  }

  private expandCopy(c: CopyTemplate, vars: Vars, host: string): Copy {
    const all = { ...vars, host };
    const src = expand(c.src, all);
    const dest = expand(c.dest, all);
    const copy = c.option === '--in' ? { local: src, remote: dest } : { local: dest, remote: src };
    checkRemotePath(copy.remote, c.option === '--in' ? `--in DEST` : `--out SRC`);
    if (copy.local === '') throw new UsageError(`${c.option} "${c.src.source}": the local path is empty`);
    // What a copy writes must be one entry: on the host for --in, here for --out.
    const [written, read] = c.option === '--in' ? [copy.remote, copy.local] : [copy.local, copy.remote];
    const problem = entryProblem(written);
    if (problem !== undefined) {
      const spec = c.src.source === c.dest.source ? c.src.source : `${c.src.source}=${c.dest.source}`;
      const side = c.option === '--in' ? "its DEST, the path on the host," : 'its DEST, the local path,';
      const fixed = entrySuggestion(dest, read);
      throw new UsageError(
        `${c.option} "${spec}": ${side} "${written}" ${problem}; DEST must name the file or directory the copy creates, ` +
          `such as ${c.option} ${src}=${fixed}`,
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

  taskIns(task: Task, host: string): Copy[] {
    return this.copies.filter((c) => c.perTask && c.option === '--in').map((c) => this.expandCopy(c, task.vars, host));
  }

  taskOuts(task: Task, host: string): Copy[] {
    return this.copies.filter((c) => c.perTask && c.option === '--out').map((c) => this.expandCopy(c, task.vars, host));
  }

  hostIns(host: string): Copy[] {
    return this.copies.filter((c) => !c.perTask && c.option === '--in').map((c) => this.expandCopy(c, {}, host));
  }

  hostOuts(host: string): Copy[] {
    return this.copies.filter((c) => !c.perTask && c.option === '--out').map((c) => this.expandCopy(c, {}, host));
  }

  /** Every local input the run reads, for checking they exist before connecting. */
  localInputs(): string[] {
    const paths = new Set<string>();
    for (const c of this.copies.filter((c) => c.option === '--in')) {
      const hosts = c.src.names.has('host') ? this.hostNames : this.hostNames.slice(0, 1);
      for (const host of hosts) {
        if (!c.perTask) paths.add(expand(c.src, { host }));
        else for (const t of this.tasks) paths.add(expand(c.src, { ...t.vars, host }));
      }
    }
    return [...paths];
  }

  /** The local files that prove a task done: its per-task outputs (host-independent by construction). */
  localOutputs(task: Task): string[] {
    return this.taskOuts(task, this.hostNames[0]!).map((c) => c.local);
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
