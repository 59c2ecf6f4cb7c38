import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

// bin/distray.cjs starts the bundle with a V8 code cache kept in the user's cache directory.
let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('start-up', () => {
  it('keeps a code cache in XDG_CACHE_HOME, and a damaged one only costs the time it saves', async () => {
    dir = mkdtempSync(join(tmpdir(), 'distray-cache-'));
    const env = { XDG_CACHE_HOME: dir };
    const first = await runCli(['--version'], { cwd: dir, env });
    expect(first.code, first.stderr).toBe(0);
    const files = readdirSync(join(dir, 'distray'));
    expect(files).toHaveLength(1);
    const cache = join(dir, 'distray', files[0]!);
    const made = readFileSync(cache);
    expect(made.length).toBeGreaterThan(1000);

    // Damaged (a half-written disk, another build's): V8 refuses it, the run goes on, a good one replaces it.
    writeFileSync(cache, made.subarray(0, 100));
    const again = await runCli(['--version'], { cwd: dir, env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(first.stdout);
    expect(again.stderr).toBe('');
    expect(readFileSync(cache).length).toBeGreaterThan(made.length * 0.9);
  });

  it('runs without a cache where none can be kept', async () => {
    dir = mkdtempSync(join(tmpdir(), 'distray-cache-'));
    // The cache directory's place is a file: nothing can be made under it.
    writeFileSync(join(dir, 'distray'), '');
    const r = await runCli(['--version'], { cwd: dir, env: { XDG_CACHE_HOME: dir } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^distray\//);
    expect(r.stderr).toBe('');
  });
});
