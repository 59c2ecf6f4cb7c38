import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

/**
 * A write of this machine's that fails (the log directory or the output
 * directory on a full disk) is the controller's fault, not the host's: the
 * attempt neither fails nor counts against its host, the run is told (and
 * stops), and nothing is left as an unhandled rejection. The failing writes
 * are injected: node:fs/promises as it is, but for the paths under `full`.
 */
const full = vi.hoisted(() => ({ prefix: '\0none', code: 'ENOSPC' }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const refuse = (path: unknown): boolean => typeof path === 'string' && path.startsWith(full.prefix);
  const fail = (path: string): Promise<never> =>
    Promise.reject(Object.assign(new Error(`${full.code}: injected, write '${path}'`), { code: full.code, path }));
  return {
    ...real,
    writeFile: ((path: unknown, ...rest: unknown[]) =>
      refuse(path)
        ? fail(path as string)
        : (real.writeFile as (...a: unknown[]) => Promise<void>)(path, ...rest)) as never,
    open: ((path: unknown, ...rest: unknown[]) =>
      refuse(path)
        ? fail(path as string)
        : (real.open as (...a: unknown[]) => Promise<unknown>)(path, ...rest)) as never,
    copyFile: ((src: string, dest: unknown, mode?: number) =>
      refuse(dest) ? fail(dest as string) : real.copyFile(src, dest as string, mode)) as never,
  };
});

const { HostLifecycle } = await import('../../../src/execute/hostLifecycle.js');
const { Scheduler } = await import('../../../src/scheduler/scheduler.js');
const { LocalFault } = await import('../../../src/errors.js');
const { Plan } = await import('../../../src/plan/plan.js');
const { parseFrameSpec } = await import('../../../src/plan/frames.js');

const dir = mkdtempSync(join(tmpdir(), 'distray-localfault-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  full.prefix = '\0none';
});

const localHost = (name: string, workdir: string): never =>
  ({ name, local: true, slots: 1, workdir, env: {}, loginTimeoutMs: 60_000, source: 'test' }) as never;

/** A run of `frames` on one local host, its renderer `script`, its logs under `logDir`: what the run was told, and how it ended. */
async function runOn(
  name: string,
  script: string,
  options: { logDir: string; outs?: string[]; frames?: string },
): Promise<{
  faults: InstanceType<typeof LocalFault>[];
  sched: InstanceType<typeof Scheduler>;
  outcomes: string[];
}> {
  const plan = new Plan({
    frames: parseFrameSpec(options.frames ?? '1,3'),
    exec: 'sh',
    args: ['-c', script, 'sh', '%d'],
    ins: [],
    outs: options.outs ?? [],
    hostNames: [name],
  });
  const sched = new Scheduler(
    plan.tasks.map((t) => Scheduler.record(t)),
    { retries: 2, maxConsecutiveFailures: 3, now: () => performance.now() },
  );
  const outcomes: string[] = [];
  sched.on('event', (e) => {
    if (e.type === 'attempt-ended') outcomes.push(e.outcome);
  });
  const faults: InstanceType<typeof LocalFault>[] = [];
  sched.expectHost(name);
  const lc = new HostLifecycle(sched, plan, { warn: () => {} } as never, {
    plan,
    graceMs: 0,
    note: () => {},
    logDir: options.logDir,
    onLocalFault: (fault) => {
      faults.push(fault);
      sched.cancel();
    },
  });
  lc.start([localHost(name, join(dir, `${name}-work`))]);
  try {
    // The test's own limit ends it if the run never finishes.
    await sched.drained();
  } finally {
    await lc.stop();
    await Promise.all([...lc.sessions.values()].map((s) => s.close()));
  }
  return { faults, sched, outcomes };
}

describe('a local write that fails', () => {
  it('a log the disk has no room for: the run is told, the host is charged nothing, and no rejection goes unhandled', async () => {
    const logDir = join(dir, 'logs-full');
    full.prefix = logDir;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): number => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    // A renderer that succeeds and prints: its log is written after its slot is released (outputs still coming).
    const { faults, sched, outcomes } = await runOn('a', 'echo rendering "$1"', { logDir }).finally(() =>
      // A turn of the event loop for Node to report a rejection nobody handled.
      new Promise((resolve) => setImmediate(resolve)).then(() => process.off('unhandledRejection', onUnhandled)),
    );
    expect(unhandled).toEqual([]);
    expect(faults.length).toBeGreaterThan(0);
    expect(faults[0]).toBeInstanceOf(LocalFault);
    expect(faults[0]!.errno).toBe('ENOSPC');
    // The log's own name, not the temporary one it is written under.
    expect(faults[0]!.path).toMatch(new RegExp(`^${logDir}/frame-\\d\\.a\\.1\\.log$`));
    expect(faults[0]!.message).toContain(faults[0]!.path);
    expect(faults[0]!.message).toMatch(/no space left on the device \(ENOSPC\).*no host was blamed.*--log-dir/);
    const host = sched.hosts.get('a')!;
    expect(host.failures).toBe(0);
    expect(host.state).not.toBe('blocked');
    expect(outcomes).not.toContain('failed');
    expect(sched.records.some((r) => r.status === 'failed')).toBe(false);
  });

  it('an output this machine cannot write: a LocalFault naming the output, not a failure of the host', async () => {
    const out = join(dir, 'out-readonly');
    full.prefix = out;
    full.code = 'EROFS';
    try {
      const { faults, sched, outcomes } = await runOn('b', 'echo "frame $1" > "f$1.txt"', {
        logDir: join(dir, 'logs-b'),
        outs: [`f%d.txt=${out}/f%d.txt`],
      });
      expect(faults.length).toBeGreaterThan(0);
      expect(faults[0]!.errno).toBe('EROFS');
      expect(faults[0]!.path).toMatch(new RegExp(`^${out}/f\\d\\.txt$`));
      expect(faults[0]!.message).toMatch(/read-only file system \(EROFS\).*--out/);
      expect(sched.hosts.get('b')!.failures).toBe(0);
      expect(outcomes).not.toContain('failed');
    } finally {
      full.code = 'ENOSPC';
    }
  });
});
