import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HostRunner } from '../../../src/execute/attempt.js';
import { KEEP_FINISHED_MS } from '../../../src/tuning.js';
import { STOP_CONFIRM_MS } from '../../../src/execute/attempt.js';
import type { HostSession } from '../../../src/hosts/session.js';
import type { TaskOptions } from '../../../src/hostShell/hostShell.js';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan } from '../../../src/plan/plan.js';
import { RUN_STOPPED, type AttemptSlot } from '../../../src/scheduler/scheduler.js';
import { WAIT_MS, within } from '../../helpers/wait.js';

// An attempt the scheduler stops (a copy elsewhere replaced it, or won) ends `cancelled` whatever it
// was doing: stopped while its per-task inputs are still being sent, it did not fail, and must not
// use up one of its task's attempts, mark its host as failing that task, or count toward taking the
// host out.

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'distray-stopped-attempt-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const slot: AttemptSlot = { lane: 0, started: () => {} };

describe('an attempt stopped while its inputs are being sent', () => {
  it('ends cancelled, not failed', async () => {
    writeFileSync(join(dir, 'in1.txt'), 'scene');
    const plan = new Plan({
      frames: parseFrameSpec('1'),
      exec: 'r',
      args: [],
      ins: [`${dir}/in%d.txt=in%d.txt`],
      outs: [],
      hostNames: ['fake'],
    });
    let sending!: () => void;
    const sent = new Promise<void>((r) => (sending = r));
    // A host whose upload goes on until it is stopped, and then fails as an aborted SFTP write does.
    const session = {
      name: 'fake',
      lost: new Promise<Error>(() => {}),
      shell: () => Promise.resolve({ token: 'tok', fileOp: () => Promise.resolve(['done']) }),
      unlink: () => Promise.resolve(),
      putFile: (_local: string, _path: string, { signal }: { signal?: AbortSignal }) =>
        new Promise<void>((_resolve, reject) => {
          sending();
          signal?.addEventListener('abort', () => reject(new Error('the transfer was stopped')));
        }),
    } as unknown as HostSession;
    const runner = new HostRunner(session, 1, { plan, logDir: join(dir, 'logs'), graceMs: 0 });
    const stop = new AbortController();
    const running = runner.run(plan.tasks[0]!, 1, stop.signal, slot);
    await within(sent, WAIT_MS, 'the upload to start');
    stop.abort();
    expect(await running).toMatchObject({ kind: 'cancelled' });
  });
});

describe('a chunk stopped with the run whose finished frames are still coming back', () => {
  it('keeps as done the frames already fetched when the bound on bringing them back runs out', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    try {
      const plan = new Plan({
        frames: parseFrameSpec('1,3'),
        exec: 'r',
        args: [],
        ins: [],
        outs: [`out/f%d.txt=${dir}/f%d.txt`],
        hostNames: ['fake'],
        chunk: 3,
      });
      const task = plan.chunkTask(1, 3, 0);
      let fetching!: () => void;
      const second = new Promise<void>((r) => (fetching = r));
      // The renderer was stopped with frames 1-3 on the host (3, which cannot be checked, may be cut short: not kept);
      // frame 1 comes back at once, frame 2 is still coming when the bound runs out.
      const shell = {
        token: 'tok',
        run: (_lane: number, _id: string, _argv: string[], { signal, onStart }: TaskOptions) => {
          onStart?.();
          return new Promise((resolve) =>
            signal.addEventListener('abort', () =>
              resolve({ code: 143, wrote: false, outputs: ['file', 'file', 'file'] }),
            ),
          );
        },
        forget: () => {},
        fileOp: (_op: string, paths: readonly string[]) => Promise.resolve(paths.map(() => 'done')),
      };
      const session = {
        name: 'fake',
        lost: new Promise<Error>(() => {}),
        shell: () => Promise.resolve(shell),
        fetchFile: (path: string, local: string, options?: { signal?: AbortSignal }) => {
          if (path === 'out/f1.txt') {
            writeFileSync(local, 'frame 1\n');
            return Promise.resolve(8);
          }
          fetching();
          return new Promise<number>((_resolve, reject) =>
            options?.signal?.addEventListener('abort', () => reject(new Error('the transfer was stopped'))),
          );
        },
      } as unknown as HostSession;
      const runner = new HostRunner(session, 1, { plan, logDir: join(dir, 'logs'), graceMs: 0 });
      const stop = new AbortController();
      const running = runner.run(task, 1, stop.signal, slot);
      await Promise.resolve();
      stop.abort(RUN_STOPPED);
      await within(second, WAIT_MS, 'the second output to be fetched');
      await vi.advanceTimersByTimeAsync(KEEP_FINISHED_MS);
      const outcome = await running;
      // Frame 1 is here, whole: the report must count it done (a rerun skips it), not cancelled with the rest.
      expect(existsSync(join(dir, 'f1.txt'))).toBe(true);
      expect(existsSync(join(dir, 'f2.txt'))).toBe(false);
      expect(outcome).toMatchObject({ kind: 'cancelled', done: [1] });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('the bound on bringing back finished work after a stop', () => {
  it('counts from the stop, not from when the stopped renderer ended', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'Date'] });
    try {
      const plan = new Plan({
        frames: parseFrameSpec('1'),
        exec: 'r',
        args: [],
        ins: [],
        outs: [`out/f%d.bin=${dir}/f%d.bin`],
        hostNames: ['fake'],
      });
      let fetching!: () => void;
      const fetchStarted = new Promise<void>((r) => (fetching = r));
      let fetchStopped = false;
      // A renderer that had just finished well when the run was stopped, on a host slow to say so (5 s), whose output
      // is still coming back when the bound runs out.
      const shell = {
        token: 'tok',
        run: (_lane: number, _id: string, _argv: string[], { signal, onStart }: TaskOptions) => {
          onStart?.();
          return new Promise((resolve) =>
            signal.addEventListener('abort', () =>
              setTimeout(() => resolve({ code: 0, wrote: false, outputs: ['file'] }), 5000),
            ),
          );
        },
        forget: () => {},
        fileOp: (_op: string, paths: readonly string[]) => Promise.resolve(paths.map(() => 'done')),
      };
      const session = {
        name: 'fake',
        lost: new Promise<Error>(() => {}),
        shell: () => Promise.resolve(shell),
        fetchFile: (_path: string, _local: string, options?: { signal?: AbortSignal }) => {
          fetching();
          return new Promise<number>((_resolve, reject) =>
            options?.signal?.addEventListener('abort', () => {
              fetchStopped = true;
              reject(new Error('the transfer was stopped'));
            }),
          );
        },
      } as unknown as HostSession;
      const runner = new HostRunner(session, 1, { plan, logDir: join(dir, 'logs'), graceMs: 0 });
      const stop = new AbortController();
      const running = runner.run(plan.tasks[0]!, 1, stop.signal, slot);
      await Promise.resolve();
      stop.abort(RUN_STOPPED);
      await vi.advanceTimersByTimeAsync(5000);
      await within(fetchStarted, WAIT_MS, 'the fetch of the output to start');
      // KEEP_FINISHED_MS after the stop (the docs' "at most 10 seconds"), bringing it back is given up.
      await vi.advanceTimersByTimeAsync(KEEP_FINISHED_MS - 5000);
      expect(fetchStopped).toBe(true);
      expect(await running).toMatchObject({ kind: 'cancelled' });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('a host that goes silent while a finished output comes back and the run is stopped', () => {
  it('does not hold the attempt (and the run) past the bound waiting for the removal of what is left there', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'Date'] });
    try {
      const plan = new Plan({
        frames: parseFrameSpec('1'),
        exec: 'r',
        args: [],
        ins: [],
        outs: [`out/f%d.bin=${dir}/f%d.bin`],
        hostNames: ['fake'],
      });
      let fetching!: () => void;
      const fetchStarted = new Promise<void>((r) => (fetching = r));
      let removing!: () => void;
      const removeAsked = new Promise<void>((r) => (removing = r));
      // The renderer had ended well; its output is coming back when the host goes silent: the fetch moves no more, and a
      // removal asked of its host shell is never answered (keepalive gives the connection up only 22.5 s after the silence).
      const shell = {
        token: 'tok',
        run: (_lane: number, _id: string, _argv: string[], { onStart }: TaskOptions) => {
          onStart?.();
          return Promise.resolve({ code: 0, wrote: false, outputs: ['file'] });
        },
        forget: () => {},
        fileOp: () => {
          removing();
          return new Promise(() => {});
        },
      };
      const session = {
        name: 'fake',
        lost: new Promise<Error>(() => {}),
        shell: () => Promise.resolve(shell),
        fetchFile: (_path: string, _local: string, options?: { signal?: AbortSignal }) => {
          fetching();
          return new Promise<number>((_resolve, reject) =>
            options?.signal?.addEventListener('abort', () => reject(new Error('the transfer was stopped'))),
          );
        },
      } as unknown as HostSession;
      const runner = new HostRunner(session, 1, { plan, logDir: join(dir, 'logs'), graceMs: 0 });
      const stop = new AbortController();
      let released = false;
      const outcome = runner.run(plan.tasks[0]!, 1, stop.signal, { ...slot, released: () => (released = true) });
      await within(fetchStarted, WAIT_MS, 'the fetch of the output to start');
      expect(released).toBe(true);
      stop.abort(RUN_STOPPED);
      await vi.advanceTimersByTimeAsync(KEEP_FINISHED_MS);
      await within(removeAsked, WAIT_MS, 'the remote output to be removed');
      let ended = false;
      void outcome.then(() => (ended = true));
      await vi.advanceTimersByTimeAsync(STOP_CONFIRM_MS);
      expect(ended).toBe(true);
      expect(await outcome).toMatchObject({ kind: 'cancelled' });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('a chunk sent ahead to its lane and never started when the run is stopped', () => {
  it("keeps nothing: outputs left on the host by an earlier run are not this attempt's frames", async () => {
    const plan = new Plan({
      frames: parseFrameSpec('1,3'),
      exec: 'r',
      args: [],
      ins: [],
      outs: [`out/f%d.txt=${dir}/f%d.txt`],
      hostNames: ['fake'],
      chunk: 3,
    });
    const task = plan.chunkTask(1, 3, 0);
    // Stopped while it waited behind the slot's running task: the host shell refuses it ("exit ID 143", no states),
    // and its outputs' paths hold what an earlier run killed outright left there (a frame cut short among them).
    const shell = {
      token: 'tok',
      run: (_lane: number, _id: string, _argv: string[], { signal }: TaskOptions) =>
        new Promise((resolve) => signal.addEventListener('abort', () => resolve({ code: 143 }))),
      forget: () => {},
      fileOp: (_op: string, paths: readonly string[]) => Promise.resolve(paths.map(() => 'done')),
    };
    const fetched: string[] = [];
    const session = {
      name: 'fake',
      lost: new Promise<Error>(() => {}),
      shell: () => Promise.resolve(shell),
      readTail: () => Promise.reject(new Error('no such file')),
      stat: () => Promise.resolve({ type: 'file', size: 6 }),
      checkInside: () => Promise.resolve(),
      fetchFile: (path: string, local: string) => {
        fetched.push(path);
        writeFileSync(local, 'stale\n');
        return Promise.resolve(6);
      },
    } as unknown as HostSession;
    const runner = new HostRunner(session, 1, { plan, logDir: join(dir, 'logs'), graceMs: 0 });
    const stop = new AbortController();
    const running = runner.run(task, 1, stop.signal, { lane: 0, started: () => {} });
    await Promise.resolve();
    stop.abort(RUN_STOPPED);
    const outcome = await running;
    expect(outcome.kind).toBe('cancelled');
    expect(outcome.kind === 'cancelled' ? outcome.done : undefined).toBeUndefined();
    expect(fetched).toEqual([]);
    expect(existsSync(join(dir, 'f1.txt'))).toBe(false);
  });
});

describe('an adopted chunk stopped with the run', () => {
  it('does not keep the last frame its renderer wrote when it cannot be checked, though the host shell gave no output states', async () => {
    const plan = new Plan({
      frames: parseFrameSpec('1,3'),
      exec: 'r',
      args: [],
      ins: [],
      outs: [`out/f%d.txt=${dir}/f%d.txt`],
      hostNames: ['fake'],
      chunk: 3,
    });
    const task = plan.chunkTask(1, 3, 0);
    const fileOp = (_op: string, paths: readonly string[]): Promise<string[]> =>
      Promise.resolve(paths.map(() => 'done'));
    // The first connection started it and was lost; the host came back and its new shell adopted the task, which was
    // writing frame 3 when the run was stopped (an adopted task's end carries no output states).
    const first = {
      name: 'fake',
      lost: new Promise<Error>(() => {}),
      shell: () =>
        Promise.resolve({
          token: 'tok',
          run: (_lane: number, _id: string, _argv: string[], { onStart }: TaskOptions) => {
            onStart?.();
            return Promise.resolve({ code: null, lost: new Error('connection lost') });
          },
          forget: () => {},
          fileOp,
        }),
    } as unknown as HostSession;
    let adopted!: () => void;
    const adopting = new Promise<void>((r) => (adopted = r));
    const fetched: string[] = [];
    const second = {
      name: 'fake',
      lost: new Promise<Error>(() => {}),
      shell: () =>
        Promise.resolve({
          token: 'tok2',
          adopt: (_id: string, _token: string, { signal }: { signal: AbortSignal }) => {
            adopted();
            return new Promise((resolve) => signal.addEventListener('abort', () => resolve({ code: 143 })));
          },
          forget: () => {},
          fileOp,
        }),
      readTail: () => Promise.reject(new Error('no such file')),
      stat: () => Promise.resolve({ type: 'file', size: 6 }),
      checkInside: () => Promise.resolve(),
      fetchFile: (path: string, local: string) => {
        fetched.push(path);
        writeFileSync(local, 'frame\n');
        return Promise.resolve(6);
      },
    } as unknown as HostSession;
    const options = { plan, logDir: join(dir, 'logs'), graceMs: 60_000 };
    const back = new HostRunner(second, 1, options);
    const runner = new HostRunner(first, 1, { ...options, rejoined: () => Promise.resolve(back) });
    const stop = new AbortController();
    const running = runner.run(task, 1, stop.signal, slot);
    await within(adopting, WAIT_MS, 'the host that came back to adopt the attempt');
    stop.abort(RUN_STOPPED);
    const outcome = await running;
    expect(outcome).toMatchObject({ kind: 'cancelled', done: [1, 2] });
    expect(fetched).not.toContain('out/f3.txt');
    expect(existsSync(join(dir, 'f3.txt'))).toBe(false);
  });
});

describe('an attempt whose host does not confirm that its renderer stopped', () => {
  /** A host shell that never answers once its renderer has started (the host went silent). */
  function silentRunner(): { runner: HostRunner; plan: Plan } {
    const plan = new Plan({ frames: parseFrameSpec('1'), exec: 'r', args: [], ins: [], outs: [], hostNames: ['fake'] });
    const shell = {
      token: 'tok',
      run: (_lane: number, _id: string, _argv: string[], { onStart }: TaskOptions) => {
        onStart?.();
        return new Promise(() => {});
      },
      forget: () => {},
      fileOp: (_op: string, paths: readonly string[]) => Promise.resolve(paths.map(() => 'done')),
    };
    const session = {
      name: 'fake',
      lost: new Promise<Error>(() => {}),
      shell: () => Promise.resolve(shell),
    } as unknown as HostSession;
    return { runner: new HostRunner(session, 1, { plan, logDir: join(dir, 'logs'), graceMs: 0 }), plan };
  }

  it('is given up after the bound when the whole run is stopping, but not when a copy elsewhere won (its slot stays taken)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    try {
      for (const [reason, givenUp] of [
        [RUN_STOPPED, true],
        [undefined, false],
      ] as const) {
        const { runner, plan } = silentRunner();
        const stop = new AbortController();
        let ended = false;
        void runner.run(plan.tasks[0]!, 1, stop.signal, slot).then(() => (ended = true));
        await vi.advanceTimersByTimeAsync(0);
        stop.abort(reason);
        await vi.advanceTimersByTimeAsync(STOP_CONFIRM_MS + 1);
        expect(ended, String(reason?.toString())).toBe(givenUp);
      }
    } finally {
      vi.useRealTimers();
    }
  });
});
