import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import { checkEventLines, checkReport } from '../helpers/schemas.js';
import { defaultsBlock, hostEntry, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';
import { eventually, RUN_MS, within } from '../helpers/wait.js';
import { shellJoin } from '../../src/ssh/quote.js';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));

interface Event {
  v: number;
  type: string;
  at: number;
  host?: string;
  task?: { index: number; frame: number; tile: number | null; label: string };
  outcome?: string;
  ignored?: boolean;
  status?: string;
  exitCode?: number | null;
  stage?: string;
  seconds?: number;
  bytesIn?: number;
  bytesOut?: number;
  [key: string]: unknown;
}

interface HostSummary {
  name: string;
  state: string;
  tasksDone: number;
  failures: number;
  slots: number;
  meanSeconds: number | null;
  medianSeconds: number | null;
  bytesIn: number;
  bytesOut: number;
}

interface Report {
  ok: boolean;
  exitCode: number;
  seconds: number;
  tasks: Array<{ frame: number; status: string; host: string | null; seconds: number; error?: string }>;
  hosts: HostSummary[];
  figures: { makespan: number; ideal: number; taskSeconds: number; slots: number };
  errors: string[];
}

let farm: Farm;
let h1: SshdHost, h2: SshdHost;
let n = 0;

function workspace(): string {
  const dir = join(farm.dir, `report-${++n}`);
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(fixtures, 'render.sh'), join(dir, 'render.sh'));
  execFileSync('chmod', ['+x', join(dir, 'render.sh')]);
  return dir;
}

const events = (text: string): Event[] =>
  text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Event);

beforeAll(async () => {
  farm = startFarm();
  [h1, h2] = [await farm.start('h1'), await farm.start('h2')];
});

afterAll(async () => {
  await farm?.stop();
});

describe('events, JUnit and on-end against real sshd hosts', () => {
  it('writes an event stream and a JUnit file that agree with the report of the same run', async () => {
    const cwd = workspace();
    // A per-task input of a different size for each frame, so each attempt's bytes are its own.
    for (let f = 1; f <= 6; f++) writeFileSync(join(cwd, `in-${f}.txt`), 'x'.repeat(100 * f));
    const inv = farm.inventory(
      `${defaultsBlock(farm, '  slots: 2\n  env: { FAIL_FRAME: "3" }\n')}hosts:\n${[h1, h2].map((h) => hostEntry(farm, h, { workdir: join(h.workdir, 'agree') })).join('\n')}\n`,
      'agree.yaml',
    );
    const r = await runCli(
      [
        'run',
        inv,
        '1,6',
        './render.sh',
        '%d',
        'out/f%d.txt',
        '%{host}',
        '--in',
        'render.sh',
        '--in',
        'in-%d.txt',
        '--out',
        'out/f%d.txt=got/f%d.txt',
        '--retries',
        '1',
        '--events',
        'events.ndjson',
        '--junit',
        'junit.xml',
        '--report',
        'report.json',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(1);
    const report = JSON.parse(readFileSync(join(cwd, 'report.json'), 'utf8')) as Report;
    const stream = events(readFileSync(join(cwd, 'events.ndjson'), 'utf8'));
    // What other programs read is what the shipped schemas say.
    checkReport(report);
    checkEventLines(readFileSync(join(cwd, 'events.ndjson'), 'utf8'));

    // Every line has the schema version; the run's start and end frame everything else.
    expect(stream.every((e) => e.v === 1)).toBe(true);
    expect(stream[0]).toMatchObject({
      type: 'run-start',
      tasks: 6,
      pending: 6,
      frames: 6,
      tiles: 0,
      hosts: [
        { name: 'h1', slots: 2 },
        { name: 'h2', slots: 2 },
      ],
    });
    const end = stream.at(-1)!;
    expect(end).toMatchObject({ type: 'run-end', done: 5, failed: 1, cancelled: 0, skipped: 0 });
    const endSummary = end.summary as Report & { counts: Record<string, number> };
    expect(endSummary.exitCode).toBe(report.exitCode);
    expect(endSummary.hosts).toEqual(report.hosts);
    expect(endSummary.figures).toEqual(report.figures);
    expect(endSummary.counts).toMatchObject({ done: 5, failed: 1 });
    expect(stream.filter((e) => e.type === 'run-start' || e.type === 'run-end')).toHaveLength(2);

    // Each task's final status and host, from its task-done event, is the report's.
    const taskDone = stream.filter((e) => e.type === 'task-done');
    expect(taskDone.map((e) => [e.task!.frame, e.status, e.host]).sort()).toEqual(
      report.tasks.map((t) => [t.frame, t.status, t.host]).sort(),
    );

    // Each attempt's facts: the failing frame's exit status and stage; the bytes each attempt moved.
    const ended = stream.filter((e) => e.type === 'attempt-ended' && e.outcome !== 'released');
    const failedAttempts = ended.filter((e) => e.outcome === 'failed');
    expect(failedAttempts.map((e) => [e.task!.frame, e.exitCode, e.stage])).toEqual([
      [3, 3, 'render'],
      [3, 3, 'render'],
    ]);
    for (const e of ended.filter((x) => x.outcome === 'done')) {
      const frame = e.task!.frame;
      expect(e.exitCode).toBe(0);
      expect(e.bytesIn).toBe(100 * frame);
      expect(e.bytesOut).toBe(readFileSync(join(cwd, 'got', `f${frame}.txt`)).length);
      expect(e.seconds).toBeGreaterThan(0);
    }
    for (const e of failedAttempts) expect([e.bytesIn, e.bytesOut]).toEqual([300, 0]);

    // The report's per-host figures are the events' sums: the attempts' copies and the once-per-host ones (render.sh).
    const script = readFileSync(join(cwd, 'render.sh')).length;
    for (const h of report.hosts) {
      const mine = ended.filter((e) => e.host === h.name);
      const done = mine.filter((e) => e.outcome === 'done' && !e.ignored);
      const once = stream.filter((e) => e.type === 'host-files' && e.host === h.name);
      expect(once).toEqual([expect.objectContaining({ direction: 'in', files: 1, bytes: script })]);
      expect(h.tasksDone).toBe(done.length);
      expect(h.failures).toBe(mine.filter((e) => e.outcome === 'failed' && !e.ignored).length);
      expect(h.bytesIn).toBe(mine.reduce((s, e) => s + e.bytesIn!, 0) + script);
      expect(h.bytesOut).toBe(mine.reduce((s, e) => s + e.bytesOut!, 0));
      expect(h.slots).toBe(2);
      if (done.length > 0) expect(h.meanSeconds).toBeCloseTo(done.reduce((s, e) => s + e.seconds!, 0) / done.length, 2);
    }
    expect(report.figures.slots).toBe(4);
    expect(report.figures.ideal).toBeCloseTo(report.figures.taskSeconds / 4, 2);
    expect(report.figures.makespan).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/^distray: makespan [\d.]+s, ideal [\d.]+s \([\d.]+s of tasks over 4 slots\)$/m);
    expect(r.stderr).toMatch(
      /^distray: {3}h[12] +\d done, \d failed, mean [\d.]+s, median [\d.]+s, in [\d.]+ k?B, out \d+ B$/m,
    );

    // The JUnit file: well-formed, a testcase per task with its report's time and host, the failure with the renderer's words.
    const xml = readFileSync(join(cwd, 'junit.xml'), 'utf8');
    expect(XMLValidator.validate(xml)).toBe(true);
    type Case = {
      name: string;
      time: string;
      failure?: { '#text': string };
      properties: { property: Array<{ name: string; value: string }> };
    };
    const doc = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '',
      isArray: (k) => k === 'testcase' || k === 'property',
    }).parse(xml) as {
      testsuites: { testsuite: { tests: string; failures: string; testcase: Case[] } };
    };
    const suite = doc.testsuites.testsuite;
    expect([suite.tests, suite.failures]).toEqual(['6', '1']);
    for (const t of report.tasks) {
      const c = suite.testcase.find((x) => x.name === `frame ${t.frame}`)!;
      expect(Number(c.time)).toBeCloseTo(t.seconds, 2);
      expect(c.properties.property).toEqual([{ name: 'host', value: t.host }]);
      expect(c.failure !== undefined).toBe(t.status === 'failed');
    }
    expect(suite.testcase.find((x) => x.name === 'frame 3')!.failure!['#text']).toContain(
      'render.sh: cannot render frame 3',
    );
  });

  it('runs --on-end with the summary on stdin and the counts in its environment; its failure changes no exit status', async () => {
    const cwd = workspace();
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h1, { workdir: join(h1.workdir, 'onend') })}\n`,
      'onend.yaml',
    );
    const r = await runCli(
      [
        'run',
        inv,
        '1,3',
        './render.sh',
        '%d',
        'f%d.txt',
        'h1',
        '--in',
        'render.sh',
        '--out',
        'f%d.txt',
        '--report',
        'report.json',
        '--on-end',
        'cat > hook.json; env | grep "^DISTRAY_" | sort > hook.env; echo hook ran >&2; exit 5',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('hook ran');
    expect(r.stderr).toMatch(/^distray: --on-end: ".*" exited with status 5$/m);
    expect(JSON.parse(readFileSync(join(cwd, 'hook.json'), 'utf8'))).toEqual(
      JSON.parse(readFileSync(join(cwd, 'report.json'), 'utf8')),
    );
    expect(readFileSync(join(cwd, 'hook.env'), 'utf8')).toBe(
      'DISTRAY_CANCELLED=0\nDISTRAY_DONE=3\nDISTRAY_EXIT_CODE=0\nDISTRAY_FAILED=0\nDISTRAY_FRAMES=3\nDISTRAY_SKIPPED=0\nDISTRAY_TASKS=3\n',
    );
  });

  it('on Ctrl+C still writes the JUnit file and runs --on-end, with exit status 130', async () => {
    const cwd = workspace();
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h2, { workdir: join(h2.workdir, 'sigint') })}\n`,
      'sigint.yaml',
    );
    const env = { ...process.env };
    delete env.SSH_AUTH_SOCK;
    const child = spawn(
      process.execPath,
      [
        CLI,
        'run',
        inv,
        '1,2',
        './render.sh',
        '%d',
        'f%d.txt',
        'h2',
        '600',
        '--in',
        'render.sh',
        '--out',
        'f%d.txt',
        '--events',
        'events.ndjson',
        '--junit',
        'junit.xml',
        '--on-end',
        'env | grep "^DISTRAY_" | sort > hook.env',
      ],
      { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // The event stream says when the renderer has started.
    const started = (): boolean =>
      existsSync(join(cwd, 'events.ndjson')) &&
      readFileSync(join(cwd, 'events.ndjson'), 'utf8').includes('"type":"attempt-started"');
    expect(await eventually(started, 120_000), stderr).toBe(true);
    child.kill('SIGINT');
    const code = await within(
      new Promise<number | null>((resolve) => child.on('close', resolve)),
      RUN_MS,
      'distray to exit',
    );
    expect(code, stderr).toBe(130);
    expect(readFileSync(join(cwd, 'hook.env'), 'utf8')).toContain('DISTRAY_EXIT_CODE=130\n');
    const xml = readFileSync(join(cwd, 'junit.xml'), 'utf8');
    expect(XMLValidator.validate(xml)).toBe(true);
    expect(xml.match(/<skipped message="not done: the run was stopped/g)).toHaveLength(2);
    const stream = events(readFileSync(join(cwd, 'events.ndjson'), 'utf8'));
    expect(stream.at(-1)).toMatchObject({ type: 'run-end', cancelled: 2 });
  });

  it('writes the events to stdout with --events -, the progress on stderr only', async () => {
    const cwd = workspace();
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h1, { workdir: join(h1.workdir, 'stdout') })}\n`,
      'stdout.yaml',
    );
    const r = await runCli(
      [
        'run',
        inv,
        '1,2',
        './render.sh',
        '%d',
        'f%d.txt',
        'h1',
        '--in',
        'render.sh',
        '--out',
        'f%d.txt',
        '--events',
        '-',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    const stream = events(r.stdout);
    expect(stream.map((e) => e.type)).toEqual(
      expect.arrayContaining([
        'run-start',
        'host-state',
        'attempt-queued',
        'attempt-started',
        'attempt-ended',
        'task-done',
        'run-end',
      ]),
    );
    expect(stream.at(-1)!.type).toBe('run-end');
    expect(r.stderr).toMatch(/^distray: frame 2 done on h1 in /m);
    expect(r.stderr).not.toContain('"type"');
  });

  it('goes on to the end when the reader of --events - goes away, and says so once', async () => {
    const cwd = workspace();
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h2, { workdir: join(h2.workdir, 'epipe') })}\n`,
      'epipe.yaml',
    );
    const env = { ...process.env };
    delete env.SSH_AUTH_SOCK;
    const child = spawn(
      process.execPath,
      [
        CLI,
        'run',
        inv,
        '1,4',
        './render.sh',
        '%d',
        'f%d.txt',
        'h2',
        '--in',
        'render.sh',
        '--out',
        'f%d.txt',
        '--events',
        '-',
        '--report',
        'r.json',
      ],
      {
        cwd,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // The reader goes away at once: every write to the pipe fails.
    child.stdout.destroy();
    const code = await within(
      new Promise<number | null>((resolve) => child.on('close', resolve)),
      RUN_MS,
      'distray to exit',
    );
    expect(code, stderr).toBe(0);
    expect(
      stderr.match(
        /--events stdout: cannot write the event stream: its reader went away \(a broken pipe\); the run goes on without it/g,
      ),
    ).toHaveLength(1);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
    expect(report.tasks.map((t) => t.status)).toEqual(['done', 'done', 'done', 'done']);
  });

  it('refuses an --events or --junit path it could not write, before anything connects', async () => {
    const cwd = workspace();
    mkdirSync(join(cwd, 'adir'));
    const inv = farm.inventory(`${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h1)}\n`, 'refuse.yaml');
    const junit = await runCli(['run', inv, '1', 'true', '--junit', 'adir'], { cwd });
    expect(junit.code).toBe(2);
    expect(junit.stderr).toContain(
      '--junit "adir" is a directory; name the XML file to write, such as --junit adir/junit.xml',
    );
    const ev = await runCli(['run', inv, '1', 'true', '--events', 'out/'], { cwd });
    expect(ev.code).toBe(2);
    expect(ev.stderr).toContain('--events "out/" ends in "/"');
  });

  it('writes a JUnit file with the usage error and runs --on-end for a run that could not start', async () => {
    const cwd = workspace();
    const r = await runCli(
      [
        'run',
        'no-such.yaml',
        '1',
        'true',
        '--junit',
        'j.xml',
        '--on-end',
        'env | grep "^DISTRAY_EXIT_CODE" > hook.env',
      ],
      { cwd },
    );
    expect(r.code).toBe(2);
    const xml = readFileSync(join(cwd, 'j.xml'), 'utf8');
    expect(XMLValidator.validate(xml)).toBe(true);
    expect(xml).toContain('<testcase name="distray"');
    expect(xml).toContain('no-such.yaml');
    expect(readFileSync(join(cwd, 'hook.env'), 'utf8')).toBe('DISTRAY_EXIT_CODE=2\n');
  });
});

/**
 * A directory nothing can be created in, by this user: one without write
 * permission, or, for root (whom permissions do not stop), sysfs, where no
 * one can create a file. Checked before it is used.
 */
function unwritableDir(cwd: string): string {
  let dir = join(cwd, 'locked');
  if (process.getuid?.() === 0) dir = '/sys/distray-cannot-write-here';
  else {
    mkdirSync(dir);
    chmodSync(dir, 0o500);
  }
  expect(() => writeFileSync(join(dir, 'probe'), 'x'), `${dir} should not be writable`).toThrow();
  return dir;
}

describe('report files that cannot be written', () => {
  it('--report, --junit and --html that cannot be written each say so in one line; the summary is printed and the exit status is 4 (a local failure)', async () => {
    const cwd = workspace();
    const locked = unwritableDir(cwd);
    const inv = farm.inventory(`hosts:\n  - local: true\n    workdir: ${join(cwd, 'wd')}\n`, 'unwritable.yaml');
    const files = {
      '--report': join(locked, 'r.json'),
      '--junit': join(locked, 'j.xml'),
      '--html': join(locked, 'r.html'),
    };
    const args = Object.entries(files).flat();
    const ok = await runCli(['run', inv, '0,1', 'true', ...args, '--plain'], { cwd });
    expect(ok.code, ok.stderr).toBe(4);
    const what = { '--report': 'JSON report', '--junit': 'JUnit file', '--html': 'HTML report' };
    for (const [option, path] of Object.entries(files)) {
      const lines = ok.stderr.split('\n').filter((l) => l.includes(path));
      expect(lines, ok.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(
          `^distray: cannot write the ${what[option as keyof typeof what]} ${path}: (permission denied \\(EACCES\\)|operation not permitted \\(EPERM\\)|read-only file system \\(EROFS\\)); the render itself is not affected`,
        ),
      );
      expect(lines[0]).toContain(`give ${option} a path you can write to`);
    }
    expect(ok.stderr).not.toMatch(/^\s+at /m);
    expect(ok.stderr).toMatch(/^distray: 2 done in [\d.]+s \(exit 4\)$/m);
    // A failed render too: the files asked for are missing, which is what the status says.
    const failed = await runCli(['run', inv, '0', 'false', '--retries', '0', ...args, '--plain'], { cwd });
    expect(failed.code, failed.stderr).toBe(4);
    expect(failed.stderr).toMatch(/^distray: 1 failed in [\d.]+s \(exit 4\)$/m);
    expect(failed.stderr.split('\n').filter((l) => l.startsWith('distray: cannot write the '))).toHaveLength(3);
    expect(failed.stderr).not.toMatch(/^\s+at /m);
  });
});

// The live view on a real terminal (script(1) gives it a pty) while the events go to stdout, a file here.
describe.skipIf(!existsSync('/usr/bin/script'))('--events - on a terminal', () => {
  it('draws the live view on stderr and leaves stdout to the events', () => {
    const dir = join(farm.dir, 'tty');
    mkdirSync(dir);
    writeFileSync(join(dir, 'local.yaml'), 'hosts:\n  - local: true\n');
    const run = [
      process.execPath,
      CLI,
      'run',
      'local.yaml',
      '1,2',
      'sh',
      '-c',
      'echo %d > o%d.txt',
      '--out',
      'o%d.txt',
      '--events',
      '-',
    ];
    const command = `stty cols 120 rows 40; ${shellJoin(run)} > events.ndjson`;
    const r = spawnSync('script', ['-qec', command, '/dev/null'], {
      cwd: dir,
      env: { ...process.env, TERM: 'xterm' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.stdout).toMatch(/local: /);
    const text = readFileSync(join(dir, 'events.ndjson'), 'utf8');
    expect(text).not.toContain('\x1b');
    expect(events(text).at(-1)!.type).toBe('run-end');
  });
});
