import type { HostFigure, RunFigures } from './types.js';
import type { RunEvent } from './runEvents.js';

interface Tally {
  name: string;
  state: string | undefined;
  message: string | undefined;
  slots: number | undefined;
  lanesSeen: number;
  usable: boolean;
  tasksDone: number;
  failures: number;
  lost: number;
  seconds: number[];
  /** The completed tasks' slot time (see RunFigures.taskSeconds). */
  slotSeconds: number;
  bytesIn: number;
  bytesOut: number;
}

const round = (s: number): number => Math.round(s * 1000) / 1000;

function median(sorted: readonly number[]): number | null {
  const n = sorted.length;
  if (n === 0) return null;
  const mid = Math.floor(n / 2);
  return n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Per-host figures of a run, fed by its events one at a time: pure, no I/O
 * and no clock (time comes from the events' `at`), so the same model serves
 * the final summary, the JSON report and a live view in a browser.
 *
 *     const figures = new HostFigures();
 *     scheduler.on('event', (e) => figures.add(e));
 *     ...
 *     figures.figures(); // { hosts: [...], makespan, ideal, taskSeconds, slots }
 *
 * figures() may be called at any time (a live view calls it on every
 * change): it reflects the events added so far, with the makespan up to
 * the last one.
 */
export class HostFigures {
  private readonly hosts = new Map<string, Tally>();
  private startAt: number | undefined;
  private endAt: number | undefined;
  private lastAt: number | undefined;
  /** Attempts whose slot was released before they ended: how long they held it. */
  private readonly releasedAfter = new Map<string, number>();

  add(e: RunEvent): void {
    this.lastAt = e.at;
    switch (e.type) {
      case 'run-start':
        this.startAt ??= e.at;
        for (const h of e.hosts ?? []) this.host(h.name).slots = h.slots;
        return;
      case 'run-end':
        this.endAt = e.at;
        return;
      case 'host-state': {
        const h = this.host(e.host);
        h.state = e.state;
        h.message = e.reason;
        if (e.state === 'ok') h.usable = true;
        return;
      }
      case 'host-files': {
        const h = this.host(e.host);
        if (e.direction === 'in') h.bytesIn += e.bytes;
        else h.bytesOut += e.bytes;
        return;
      }
      case 'attempt-queued': {
        const h = this.host(e.host);
        h.state ??= 'ok';
        h.usable = true;
        h.lanesSeen = Math.max(h.lanesSeen, e.lane + 1);
        return;
      }
      case 'attempt-ended': {
        const key = `${e.task.index}/${e.attempt}`;
        if (e.outcome === 'released') {
          this.releasedAfter.set(key, e.seconds);
          return;
        }
        const slotSeconds = this.releasedAfter.get(key) ?? e.seconds;
        this.releasedAfter.delete(key);
        const h = this.host(e.host);
        h.state ??= 'ok';
        h.bytesIn += e.bytesIn;
        h.bytesOut += e.bytesOut;
        // Lost with the host, even when a copy elsewhere won meanwhile.
        if (e.outcome === 'lost') h.lost++;
        if (e.ignored) return;
        if (e.outcome === 'done') {
          h.tasksDone++;
          h.seconds.push(e.seconds);
          h.slotSeconds += slotSeconds;
        } else if (e.outcome === 'failed') h.failures++;
        return;
      }
      case 'chunk-split': {
        // The attempt ended failed (counted above), yet the runs of frames it finished are tasks done there.
        const h = this.host(e.host);
        h.tasksDone += e.parts.filter((p) => p.done).length;
        return;
      }
      default:
        return;
    }
  }

  /** One host's figures now (a live view asks for the host an event changed), or undefined before any event of its own. */
  figure(name: string): HostFigure | undefined {
    const h = this.hosts.get(name);
    return h?.state === undefined ? undefined : this.figureOf(h);
  }

  private figureOf(h: Tally): HostFigure {
    const sum = h.seconds.reduce((a, b) => a + b, 0);
    const med = median([...h.seconds].sort((a, b) => a - b));
    return {
      name: h.name,
      state: h.state ?? 'connecting',
      ...(h.message !== undefined ? { message: h.message } : {}),
      slots: h.slots ?? h.lanesSeen,
      tasksDone: h.tasksDone,
      failures: h.failures,
      lost: h.lost,
      meanSeconds: h.seconds.length > 0 ? round(sum / h.seconds.length) : null,
      medianSeconds: med === null ? null : round(med),
      bytesIn: h.bytesIn,
      bytesOut: h.bytesOut,
    };
  }

  figures(): RunFigures {
    let taskSeconds = 0;
    let slots = 0;
    const hosts: HostFigure[] = [];
    for (const h of this.hosts.values()) {
      // Known only from the run's start (its slots), not yet from an event of its own.
      if (h.state === undefined) continue;
      const f = this.figureOf(h);
      taskSeconds += h.slotSeconds;
      if (h.usable) slots += f.slots;
      hosts.push(f);
    }
    const end = this.endAt ?? this.lastAt;
    const makespan = this.startAt !== undefined && end !== undefined ? round((end - this.startAt) / 1000) : null;
    return {
      hosts,
      makespan,
      ideal: slots > 0 ? round(taskSeconds / slots) : null,
      taskSeconds: round(taskSeconds),
      slots,
    };
  }

  private host(name: string): Tally {
    let h = this.hosts.get(name);
    if (!h) {
      h = {
        name,
        state: undefined,
        message: undefined,
        slots: undefined,
        lanesSeen: 0,
        usable: false,
        tasksDone: 0,
        failures: 0,
        lost: 0,
        seconds: [],
        slotSeconds: 0,
        bytesIn: 0,
        bytesOut: 0,
      };
      this.hosts.set(name, h);
    }
    return h;
  }
}
