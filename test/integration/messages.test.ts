import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

// What a new user sees from the built CLI before anything connects.
const dir = mkdtempSync(join(tmpdir(), 'distray-msg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('first-hour messages', () => {
  it('check with no inventory says what is missing, not "undefined"', async () => {
    const r = await runCli(['check'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(/undefined/);
    expect(r.stderr).toMatch(/no inventory given: expected distray check <inventory>/);
  });

  it('run --help and check --help have the same shape, exit codes and where the reference is', async () => {
    const run = await runCli(['run', '--help'], { cwd: dir });
    const check = await runCli(['check', '--help'], { cwd: dir });
    for (const r of [run, check]) {
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: distray (run|check) <inventory>/);
      expect(r.stdout).toMatch(/\nOptions:\n/);
      expect(r.stdout).toMatch(/\nExit status:\n {2}0 /);
      expect(r.stdout).toMatch(/ 3 +no host (was|is) usable/);
      // The pages the help names are shipped in the package, so they exist wherever distray is installed.
      const reference = /^The complete reference: (\S+\/docs\/cli\.md)$/m.exec(r.stdout)?.[1];
      expect(reference && existsSync(reference), r.stdout).toBe(true);
      const readme = /^Recipes, troubleshooting and the other pages: (\S+\/README\.md)$/m.exec(r.stdout)?.[1];
      expect(readme && existsSync(readme), r.stdout).toBe(true);
    }
    expect(run.stdout).toMatch(/\n {4}distray run farm\.yaml 1,120 povray /);
    expect(run.stdout).toMatch(/\n {4}distray run farm\.yaml 1,250 blender /);
    expect(run.stdout).toMatch(/--timeout DURATION .*a number alone is seconds/);
  });

  it('warns about a misspelt distray option that goes to the renderer', async () => {
    writeFileSync(join(dir, 'farm.yaml'), 'hosts: [a.invalid]\n');
    const r = await runCli(['run', 'farm.yaml', '1', './ray', '%d', '--ouput', 'x%d.png', '--dry-run'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: "--ouput" .*passed to the renderer; did you mean --out\?/);
    expect(r.stdout).toContain('--ouput');
  });

  it('prefixes every line of a multi-line inventory error', async () => {
    writeFileSync(join(dir, 'typo.yaml'), 'host:\n  - a\n');
    const r = await runCli(['run', 'typo.yaml', '1', './ray'], { cwd: dir });
    expect(r.code).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) expect(l).toMatch(/^distray: /);
    expect(r.stderr).toMatch(
      /typo\.yaml:1: unknown field "host" at the top level of the file \(did you mean "hosts"\?\)/,
    );
  });
});
