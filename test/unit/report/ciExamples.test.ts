import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateWorkflow } from '@action-validator/core';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseArgv } from '../../../src/cli/argv.js';
import { RUN } from '../../../src/cli/options.js';
import { loadInventory } from '../../../src/inventory/load.js';

const file = (name: string): string => readFileSync(new URL(`../../../examples/ci/${name}`, import.meta.url), 'utf8');

/** The words of a `npx --no distray run ...` line (the recipes quote only --on-end's command, in single quotes). */
function distrayRun(script: string): string[] {
  const line = script.trim();
  // --no: a missing devDependency fails the job, rather than npx fetching a package of that name.
  expect(line.startsWith('npx --no distray run ')).toBe(true);
  const words = line.slice('npx --no distray run '.length).match(/'[^']*'|\S+/g) ?? [];
  return words.map((w) => (w.startsWith("'") ? w.slice(1, -1) : w));
}

/** What every recipe must do: strict host keys, the JUnit file and the report written, frames fetched into the kept directory. */
function checkRun(words: string[]): { junit: string; report: string; framesDir: string } {
  const argv = parseArgv(words, RUN);
  const [inventory] = argv.positionals;
  // Where the recipe says to keep examples/ci/farm.yaml in the user's repository.
  expect(inventory).toBe('render/farm.yaml');
  // Someone is told how the render went.
  expect(argv.options['on-end']).toMatch(/DISTRAY_DONE/);
  const junit = argv.options.junit as string;
  const report = argv.options.report as string;
  const out = argv.options.out as string[];
  expect(junit).toMatch(/\.xml$/);
  expect(report).toMatch(/\.json$/);
  const framesDir = out[0]!.split('=')[1]!.split('/')[0]!;
  return { junit, report, framesDir };
}

describe('the CI recipe (examples/ci)', () => {
  it('is shown in docs/ci.md as it is in the files', () => {
    const page = readFileSync(new URL('../../../docs/ci.md', import.meta.url), 'utf8');
    for (const name of ['farm.yaml', 'github-actions.yml', 'gitlab-ci.yml'])
      expect(page, name).toContain('```yaml\n' + file(name) + '```');
  });

  it('has a farm that verifies every host key', () => {
    expect(file('farm.yaml')).not.toMatch(/hostKeyPolicy:\s*(off|accept-new)/);
    // As the CI job leaves it: the key and known_hosts written from the secrets.
    const home = mkdtempSync(join(tmpdir(), 'distray-ci-home-'));
    const saved = process.env.HOME;
    let hosts;
    try {
      mkdirSync(join(home, '.ssh'));
      writeFileSync(join(home, '.ssh', 'distray_ci'), 'key', { mode: 0o600 });
      writeFileSync(join(home, '.ssh', 'known_hosts'), '');
      process.env.HOME = home;
      hosts = loadInventory(new URL('../../../examples/ci/farm.yaml', import.meta.url).pathname, {
        sshConfigPath: '/dev/null',
      });
    } finally {
      process.env.HOME = saved;
      rmSync(home, { recursive: true, force: true });
    }
    expect(hosts.length).toBe(3);
    for (const h of hosts) expect(h.hostKeyPolicy).toBe('strict');
  });

  it('has a GitHub Actions workflow valid against its schema, publishing the JUnit file and keeping the frames', () => {
    const text = file('github-actions.yml');
    const state = validateWorkflow(text);
    expect(state.errors).toEqual([]);
    // The validator does look: a misspelt key is an error.
    expect(validateWorkflow(text.replace('runs-on:', 'run-on:')).errors.length).toBeGreaterThan(0);
    const wf = parse(text) as {
      jobs: {
        render: {
          steps: Array<{ uses?: string; run?: string; with?: Record<string, string>; env?: Record<string, string> }>;
        };
      };
    };
    const steps = wf.jobs.render.steps;
    const render = steps.find((s) => s.run?.startsWith('npx --no distray run'))!;
    const { junit, report, framesDir } = checkRun(distrayRun(render.run!));
    // The frames of earlier attempts come back before the render, and are kept even when it fails: a re-run renders only what is missing.
    const restore = steps.findIndex((s) => s.uses?.startsWith('actions/cache/restore'));
    const save = steps.findIndex((s) => s.uses?.startsWith('actions/cache/save'));
    const at = steps.indexOf(render);
    expect(restore).toBeGreaterThanOrEqual(0);
    expect(restore).toBeLessThan(at);
    expect(save).toBeGreaterThan(at);
    expect(steps[restore]!.with!.path).toBe(`${framesDir}/`);
    expect(steps[save]!.with).toEqual({ path: `${framesDir}/`, key: steps[restore]!.with!.key });
    expect(steps[restore]!.with!.key!.startsWith(steps[restore]!.with!['restore-keys']!)).toBe(true);
    expect((steps[save] as { if?: string }).if).toContain('!cancelled()');
    const publish = steps.find((s) => s.uses?.startsWith('mikepenz/action-junit-report'))!;
    expect(publish.with!.report_paths).toBe(junit);
    const upload = steps.find((s) => s.uses?.startsWith('actions/upload-artifact'))!;
    expect(upload.with!.path).toContain(`${framesDir}/`);
    expect(upload.with!.path).toContain(report);
    const secrets = steps.find((s) => s.env?.SSH_KEY)!;
    expect(secrets.env).toEqual({
      SSH_KEY: '${{ secrets.DISTRAY_SSH_KEY }}',
      KNOWN_HOSTS: '${{ secrets.DISTRAY_KNOWN_HOSTS }}',
    });
  });

  it('has a GitLab CI job with the JUnit report and the frames as artifacts', () => {
    const ci = parse(file('gitlab-ci.yml')) as Record<string, unknown>;
    expect(Object.keys(ci).sort()).toEqual(['render', 'stages']);
    const job = ci.render as {
      stage: string;
      image: string;
      before_script: string[];
      script: string[];
      artifacts: { when: string; paths: string[]; reports: { junit: string } };
    };
    expect(ci.stages).toContain(job.stage);
    const allowed = new Set([
      'stage',
      'image',
      'tags',
      'resource_group',
      'timeout',
      'rules',
      'cache',
      'before_script',
      'script',
      'artifacts',
      'variables',
    ]);
    for (const key of Object.keys(job)) expect(allowed).toContain(key);
    expect(job.image).toMatch(/^node:(2\d)/);
    expect(job.before_script.join('\n')).toContain('"$DISTRAY_SSH_KEY"');
    expect(job.before_script.join('\n')).toContain('"$DISTRAY_KNOWN_HOSTS"');
    const { junit, report, framesDir } = checkRun(distrayRun(job.script[0]!));
    expect(job.artifacts.when).toBe('always');
    expect(job.artifacts.reports.junit).toBe(junit);
    expect(job.artifacts.paths).toEqual(expect.arrayContaining([`${framesDir}/`, report]));
    // A retried job gets the frames of the failed one.
    const cache = (job as unknown as { cache: { paths: string[]; when: string; key: { files: string[] } } }).cache;
    expect(cache.paths).toEqual([`${framesDir}/`]);
    expect(cache.when).toBe('always');
    expect(cache.key.files.length).toBeGreaterThan(0);
  });
});
