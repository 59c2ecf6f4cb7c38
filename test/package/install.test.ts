/**
 * distray installed the ways a user installs an npm CLI: the packed tarball
 * installed globally (into a temporary prefix), the tarball as a project's
 * devDependency (run with `npx --no`, which never fetches a package of that
 * name from a registry), and straight from git, where the `prepare` script
 * builds it. Each install runs `--version` and a real render on this machine
 * (the example inventory's local host). Dependencies come from the npm
 * registry, as for a user (npm's cache makes that quick after `npm ci`).
 */
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  files: string[];
};

let tmp: string;
let tarball: string;

/** Runs a command, failing the test with its output when it fails. */
function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const r: SpawnSyncReturns<string> = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** npm without the caller's own project settings leaking in (npm test sets npm_config_* for its scripts). */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.toLowerCase().startsWith('npm_')) env[k] = v;
  return { ...env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
}

/** A fresh npm project to install into. */
function project(name: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  // npm runs a git dependency's prepare script (its build) only when the project allows it.
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name, version: '1.0.0', private: true, allowScripts: { [pkg.name]: true } }, null, 2),
  );
  return dir;
}

/** The quick start's render, two frames of it, with the distray command given. */
function renders(distray: string[], cwd: string): void {
  mkdirSync(join(cwd, 'examples'), { recursive: true });
  cpSync(join(ROOT, 'examples', 'local.yaml'), join(cwd, 'examples', 'local.yaml'));
  cpSync(join(ROOT, 'examples', 'ray.mjs'), join(cwd, 'examples', 'ray.mjs'));
  const [cmd, ...pre] = distray;
  sh(
    cmd!,
    [
      ...pre,
      'run',
      'examples/local.yaml',
      '0,1',
      'node',
      'ray.mjs',
      '%d',
      'frame-%04d.png',
      '--res',
      '32x18',
      '--in',
      'examples/ray.mjs=ray.mjs',
      '--out',
      'frame-%04d.png=anim/frame-%04d.png',
      '--quiet',
    ],
    cwd,
    npmEnv(),
  );
  expect(readdirSync(join(cwd, 'anim')).sort()).toEqual(['frame-0000.png', 'frame-0001.png']);
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'distray-pkg-'));
  // npm test has built dist/ already; a run of this file alone builds it first.
  if (!existsSync(join(ROOT, 'dist', 'cli', 'distray.cjs'))) sh('npm', ['run', 'build'], ROOT);
  const out = sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], ROOT, npmEnv());
  const [info] = JSON.parse(out) as Array<{ filename: string }>;
  tarball = join(tmp, info!.filename);
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('holds only what it needs to run, and is ready to publish', () => {
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((f) => f.replace(/^package\//, ''));
    expect(files).toContain('bin/distray.cjs');
    expect(files).toContain('dist/cli/distray.cjs');
    expect(files).toContain('dist/hostShell/hostShell.sh');
    expect(files).toContain('LICENSE');
    // The pages `distray run --help` names.
    expect(files).toContain('README.md');
    expect(files).toContain('docs/cli.md');
    expect(
      files.filter((f) => /^(src|test|bench|scripts)\//.test(f) || f.endsWith('.map') || f.endsWith('.ts')),
    ).toEqual([]);
    const dry = spawnSync('npm', ['publish', '--dry-run', '--ignore-scripts'], {
      cwd: ROOT,
      env: npmEnv(),
      encoding: 'utf8',
    });
    expect(dry.status, dry.stderr).toBe(0);
    // npm says what it would fix in package.json (a bin path, a repository URL) as warnings: there are none
    // (but for the one every dry run without a login gets).
    expect(
      dry.stderr.split('\n').filter((l) => /npm warn/i.test(l) && !/requires you to be logged in/.test(l)),
    ).toEqual([]);
  });

  it('installs globally from the packed tarball, and runs', () => {
    const prefix = join(tmp, 'prefix');
    sh('npm', ['install', '--global', '--prefix', prefix, tarball], tmp, npmEnv());
    const bin = join(prefix, 'bin', 'distray');
    expect(sh(bin, ['--version'], tmp)).toContain(`distray/${pkg.version} `);
    const work = join(tmp, 'global-work');
    mkdirSync(work);
    renders([bin], work);
  });

  it('installs as a devDependency from the tarball, and npx --no finds it', () => {
    const dir = project('from-tarball');
    sh('npm', ['install', '--save-dev', tarball], dir, npmEnv());
    // (`--` keeps npx from taking --version as its own.)
    expect(sh('npx', ['--no', '--', 'distray', '--version'], dir, npmEnv())).toContain(`distray/${pkg.version} `);
    renders(['npx', '--no', 'distray'], dir);
  });

  it('installs from git, built by its prepare script', () => {
    // The committed state of this checkout, as a user's git URL would give it.
    const clone = join(tmp, 'clone');
    sh('git', ['clone', '--quiet', '--no-local', ROOT, clone], tmp);
    const dir = project('from-git');
    sh('npm', ['install', '--save-dev', `git+file://${clone}`], dir, npmEnv());
    expect(existsSync(join(dir, 'node_modules', 'distray', 'dist', 'cli', 'distray.cjs'))).toBe(true);
    expect(sh('npx', ['--no', '--', 'distray', '--version'], dir, npmEnv())).toContain(`distray/${pkg.version} `);
    renders(['npx', '--no', 'distray'], dir);
  });
});
