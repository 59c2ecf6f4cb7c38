import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Progress } from '../../src/views/progress.js';
import { RunCrashError, run } from '../../src/run.js';
import { runConfig } from '../../src/config.js';
import { Teardown } from '../../src/teardown.js';

let dir: string;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Teardown', () => {
  it('runs every step, last first, even when one throws', async () => {
    const t = new Teardown();
    const order: string[] = [];
    t.add(() => order.push('first'));
    t.add(() => {
      throw new Error('boom');
    });
    t.add(async () => {
      await Promise.resolve();
      order.push('last');
    });
    const errors = await t.run();
    expect(order).toEqual(['last', 'first']);
    expect(errors).toHaveLength(1);
    expect(await t.run()).toEqual([]);
  });
});

describe('run, when something throws in the middle', () => {
  it('closes what it opened, writes the report, and rethrows', async () => {
    dir = mkdtempSync(join(tmpdir(), 'distray-teardown-'));
    const inventory = join(dir, 'hosts.yaml');
    writeFileSync(inventory, `hosts:\n  - local: true\n    workdir: ${join(dir, 'wd')}\n`);
    let stopped = 0;
    const progress: Progress = {
      attach: () => {
        throw new Error('the view broke');
      },
      note: () => {},
      stop: () => {
        stopped++;
        return Promise.resolve();
      },
    };
    const report = join(dir, 'r.json');
    const config = runConfig({
      inventory,
      frames: { first: 1, last: 3, step: 1 },
      exec: 'true',
      report,
      logDir: join(dir, 'logs'),
    });
    const crash: unknown = await run(config, { progress }).catch((err: unknown) => err);
    // A typed error: what failed as its cause and message, and the summary the report was written from.
    expect(crash).toBeInstanceOf(RunCrashError);
    const { cause, message, summary } = crash as RunCrashError;
    expect(message).toBe('the view broke');
    expect(cause).toBeInstanceOf(Error);
    expect(summary).toMatchObject({ ok: false, exitCode: 1, errors: ['internal error: the view broke'] });
    const written = JSON.parse(readFileSync(report, 'utf8')) as {
      exitCode: number;
      errors: string[];
      tasks: Array<{ status: string }>;
    };
    expect(written.exitCode).toBe(1);
    expect(written.errors).toContain('internal error: the view broke');
    expect(written.tasks.map((t) => t.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    // The view was never attached, so there was nothing of it to stop.
    expect(stopped).toBe(0);
  });
});
