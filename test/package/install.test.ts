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
    // The library: its module and its declarations (.d.ts, the only TypeScript shipped).
    expect(files).toContain('dist/api/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(
      files.filter(
        (f) =>
          /^(src|test|bench|scripts)\//.test(f) || f.endsWith('.map') || (f.endsWith('.ts') && !f.endsWith('.d.ts')),
      ),
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

  it('is a library too: imported by a program, typed by its declarations, run and stopped from code', () => {
    const dir = project('as-library');
    sh('npm', ['install', tarball], dir, npmEnv());
    mkdirSync(join(dir, 'examples'));
    cpSync(join(ROOT, 'examples', 'local.yaml'), join(dir, 'examples', 'local.yaml'));
    // A program as docs/api.md shows it: one run to its end, one stopped by its signal once a renderer has started.
    const program = `
import { run, runConfig, parseFrameSpec, loadInventory, RunCrashError, UsageError, type RunEvent } from 'distray';

const hosts = loadInventory('examples/local.yaml');
const events: RunEvent['type'][] = [];
const done = await run(
  runConfig({ inventory: 'examples/local.yaml', frames: parseFrameSpec('1,3'), exec: 'sh', args: ['-c', 'echo %d > f%d.txt'], outs: ['f%d.txt'] }),
  { onEvent: (e) => void events.push(e.type) },
);

const stop = new AbortController();
const stopped = await run(
  runConfig({ inventory: 'examples/local.yaml', frames: parseFrameSpec('1,2'), exec: 'sleep', args: ['60'], retries: 0 }),
  { signal: stop.signal, onEvent: (e) => { if (e.type === 'attempt-started') stop.abort(); } },
);

let refused = '';
try {
  runConfig({ inventory: 'examples/local.yaml', frames: parseFrameSpec('1'), exec: 'true', retries: -1 });
} catch (err) {
  if (err instanceof UsageError) refused = err.message;
}
const crash: typeof RunCrashError | undefined = RunCrashError;
console.log(JSON.stringify({
  hosts: hosts.map((h) => h.name),
  exitCode: done.exitCode,
  tasks: done.tasks.map((t) => t.status),
  first: events[0],
  last: events.at(-1),
  stopped: stopped.exitCode,
  stoppedTasks: stopped.tasks.map((t) => t.status),
  refused,
  crash: crash !== undefined,
}));
`;
    writeFileSync(join(dir, 'program.ts'), program);
    // Type-checked against the shipped declarations alone (skipLibCheck off: they must hold together).
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          typeRoots: [join(ROOT, 'node_modules', '@types')],
          types: ['node'],
        },
        files: ['program.ts'],
      }),
    );
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ ...JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')), type: 'module' }),
    );
    sh(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], dir);
    // Run as plain JavaScript: the same program with its types stripped by the TypeScript compiler.
    sh(
      join(ROOT, 'node_modules', '.bin', 'tsc'),
      [
        'program.ts',
        '--target',
        'ES2022',
        '--module',
        'NodeNext',
        '--moduleResolution',
        'NodeNext',
        '--skipLibCheck',
        '--outDir',
        'out',
        '--typeRoots',
        join(ROOT, 'node_modules', '@types'),
        '--types',
        'node',
      ],
      dir,
    );
    const result = JSON.parse(sh('node', ['out/program.js'], dir, npmEnv())) as Record<string, unknown>;
    expect(result).toEqual({
      hosts: ['local'],
      exitCode: 0,
      tasks: ['done', 'done', 'done'],
      first: 'run-start',
      last: 'run-end',
      stopped: 130,
      stoppedTasks: ['cancelled', 'cancelled'],
      refused: '--retries must be a whole number of at least 0',
      crash: true,
    });
    expect(readFileSync(join(dir, 'f2.txt'), 'utf8')).toBe('2\n');
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
