import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { defaultsBlock, freePort, hostEntry, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const examples = fileURLToPath(new URL('../../examples/', import.meta.url));

interface Report {
  ok: boolean;
  seconds: number;
  tasks: Array<{
    frame: number;
    tile: number | null;
    status: string;
    host: string | null;
    attempts: number;
    error?: string;
    start?: number;
    end?: number;
  }>;
  hosts: Array<{ name: string; state: string; tasksDone: number; failures: number; message?: string }>;
}

let farm: Farm;
let h1: SshdHost, h2: SshdHost, h3: SshdHost;
let work: string;
let n = 0;

/** A fresh local directory for one test, with the fixtures copied in. */
function workspace(): string {
  const dir = join(work, `t${++n}`);
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(fixtures)) copyFileSync(join(fixtures, f), join(dir, f));
  execFileSync('chmod', ['+x', join(dir, 'render.sh'), join(dir, 'argv.sh')]);
  copyFileSync(join(examples, 'ray.mjs'), join(dir, 'ray.mjs'));
  return dir;
}

function readReport(path: string): Report {
  return JSON.parse(readFileSync(path, 'utf8')) as Report;
}

beforeAll(async () => {
  farm = startFarm();
  [h1, h2, h3] = [await farm.start('h1'), await farm.start('h2'), await farm.start('h3')];
  work = join(farm.dir, 'local');
  mkdirSync(work);
});

afterAll(async () => {
  await farm?.stop();
});

describe('distray run against real sshd hosts', () => {
  it('renders every frame with the example renderer, byte-identical to a local render', async () => {
    const cwd = workspace();
    const inv = farm.inventory(
      `${defaultsBlock(farm, '  slots: 2\n')}hosts:\n${[h1, h2, h3].map((h) => hostEntry(farm, h)).join('\n')}\n`,
      'ray.yaml',
    );
    const r = await runCli(
      [
        'run',
        inv,
        '0,11',
        'node',
        'ray.mjs',
        '%d',
        'out/f-%03d.png',
        '--res',
        '96x54',
        '--in',
        'ray.mjs',
        '--out',
        'out/f-%03d.png=anim/f-%03d.png',
        '--report',
        'report.json',
      ],
      { cwd },
    );
    expect(r.stderr).toContain('12 done');
    expect(r.code).toBe(0);
    const report = readReport(join(cwd, 'report.json'));
    expect(report.ok).toBe(true);
    expect(report.tasks.map((t) => t.status)).toEqual(Array(12).fill('done'));
    // Each task says when it ran, within the run.
    for (const t of report.tasks) {
      expect(t.start).toBeGreaterThan(0);
      expect(t.end).toBeGreaterThanOrEqual(t.start!);
      expect(t.end).toBeLessThanOrEqual(report.seconds);
    }
    // Frames spread over the hosts, and each frame is exactly what a local render gives.
    expect(new Set(report.tasks.map((t) => t.host)).size).toBeGreaterThan(1);
    for (const f of [0, 5, 11]) {
      const local = join(cwd, `local-${f}.png`);
      execFileSync(process.execPath, [join(cwd, 'ray.mjs'), String(f), local, '--res', '96x54'], { stdio: 'ignore' });
      expect(readFileSync(join(cwd, 'anim', `f-${String(f).padStart(3, '0')}.png`)).equals(readFileSync(local))).toBe(
        true,
      );
    }
    // Nothing temporary is left beside the outputs, and the remote copies were cleaned up.
    expect(readdirSync(join(cwd, 'anim')).filter((f) => !/^f-\d{3}\.png$/.test(f))).toEqual([]);

    // A rerun finds every frame complete and renders nothing.
    const again = await runCli(
      [
        'run',
        inv,
        '0,11',
        'node',
        'ray.mjs',
        '%d',
        'out/f-%03d.png',
        '--res',
        '96x54',
        '--in',
        'ray.mjs',
        '--out',
        'out/f-%03d.png=anim/f-%03d.png',
        '--report',
        'report2.json',
      ],
      { cwd },
    );
    expect(again.code).toBe(0);
    expect(readReport(join(cwd, 'report2.json')).tasks.every((t) => t.status === 'skipped')).toBe(true);

    // A truncated frame is not complete: only that one is rendered again.
    const f3 = join(cwd, 'anim', 'f-003.png');
    writeFileSync(f3, readFileSync(f3).subarray(0, 200));
    const third = await runCli(
      [
        'run',
        inv,
        '0,11',
        'node',
        'ray.mjs',
        '%d',
        'out/f-%03d.png',
        '--res',
        '96x54',
        '--in',
        'ray.mjs',
        '--out',
        'out/f-%03d.png=anim/f-%03d.png',
        '--report',
        'report3.json',
      ],
      { cwd },
    );
    expect(third.code).toBe(0);
    const rep3 = readReport(join(cwd, 'report3.json'));
    expect(rep3.tasks.filter((t) => t.status === 'done').map((t) => t.frame)).toEqual([3]);
    await sharp(f3).raw().toBuffer();
  });

  it("never runs more than a host's slots at once, measured on the host", async () => {
    const cwd = workspace();
    const slots = { h1: 1, h2: 3, h3: 2 } as Record<string, number>;
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${[h1, h2, h3].map((h) => hostEntry(farm, h, { slots: slots[h.name], workdir: join(h.workdir, 'slots') })).join('\n')}\n`,
      'slots.yaml',
    );
    const r = await runCli(
      [
        'run',
        inv,
        '1,30',
        './render.sh',
        '%d',
        'out/%d.txt',
        '%{host}',
        '0.3',
        '--in',
        'render.sh',
        '--out',
        'out/%d.txt=frames/%d.txt',
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    for (const h of [h1, h2, h3]) {
      const counts = readFileSync(join(h.workdir, 'slots', 'concurrency.log'), 'utf8')
        .trim()
        .split('\n')
        .map(Number);
      expect(Math.max(...counts)).toBeLessThanOrEqual(slots[h.name]!);
      // With 30 tasks of 0.3 s, every slot of a multi-slot host is used at some point.
      if (slots[h.name]! > 1) expect(Math.max(...counts)).toBeGreaterThan(1);
    }
    for (let f = 1; f <= 30; f++) {
      expect(readFileSync(join(cwd, 'frames', `${f}.txt`), 'utf8')).toMatch(
        new RegExp(`^frame ${f} rendered by h[123]\\n$`),
      );
    }
  });

  it('passes arguments full of shell metacharacters byte for byte', async () => {
    const cwd = workspace();
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h1, { workdir: join(h1.workdir, 'argv') })}\n`,
      'argv.yaml',
    );
    const canary = join(farm.dir, 'pwned');
    const nasty = [
      'two words',
      "it's",
      '"double"',
      `$(touch ${canary})`,
      `\`touch ${canary}\``,
      `; touch ${canary}`,
      '*',
      '$HOME ${PATH}',
      'line one\nline two\n',
      'back\\slash',
      '',
      '-n',
      'tab\there',
      '100%% of %d',
      '|&<>(){}[]!#~',
      'ünïcødé ✓',
    ];
    const r = await runCli(
      ['run', inv, '7', './argv.sh', 'out.bin', ...nasty, '--in', 'argv.sh', '--out', 'out.bin=argv-%d.bin'],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    const received = readFileSync(join(cwd, 'argv-7.bin'), 'utf8').split('\0').slice(0, -1);
    expect(received).toEqual(nasty.map((a) => a.replace('100%% of %d', '100% of 7')));
    expect(existsSync(canary)).toBe(false);
  });

  it('sends a directory of inputs new to a host as one archive, byte for byte, and nothing the second time', async () => {
    const cwd = workspace();
    mkdirSync(join(cwd, 'tex', 'sub'), { recursive: true });
    const names = [...Array.from({ length: 20 }, (_, i) => `t${i}.dat`), 'sub/nested file.dat'];
    for (const [i, n] of names.entries()) writeFileSync(join(cwd, 'tex', n), randomBytes(1000 + i));
    const wd = join(h2.workdir, 'packed');
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h2, { workdir: wd })}\n`,
      'packed.yaml',
    );
    const args = [
      'run',
      inv,
      '1,2',
      'sh',
      '-c',
      'ls assets/tex | wc -l > "$1"',
      '%d',
      'out/%d.txt',
      '--in',
      'tex=assets/tex',
      '--out',
      'out/%d.txt=f/%d.txt',
    ];
    const r = await runCli(args, { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/inputs: sent 21 of 21 files/);
    for (const n of names)
      expect(readFileSync(join(wd, 'assets', 'tex', n)).equals(readFileSync(join(cwd, 'tex', n))), n).toBe(true);
    expect(readdirSync(join(wd, 'assets'))).toEqual(['tex']);
    const again = await runCli([...args, '--force'], { cwd });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/inputs: sent 0 of 21 files/);
  });

  it('with one slot and one remote output path for every frame, gives each frame its own output', async () => {
    const cwd = workspace();
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h3, { workdir: join(h3.workdir, 'shared-out') })}\n`,
      'shared-out.yaml',
    );
    // Every frame writes out.txt: the next frame must not start (nor clear it) before it is fetched.
    const r = await runCli(
      ['run', inv, '1,30', 'sh', '-c', 'sleep 0.05; echo "frame $0" > out.txt', '%d', '--out', 'out.txt=f/%d.txt'],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    for (let f = 1; f <= 30; f++) expect(readFileSync(join(cwd, 'f', `${f}.txt`), 'utf8')).toBe(`frame ${f}\n`);
  });

  it('never takes a stale remote output for a new one, and makes output directories', async () => {
    const cwd = workspace();
    const wd = join(h1.workdir, 'stale');
    // Left on the host by an earlier run: a file, another file, a directory.
    mkdirSync(join(wd, 'out', '3.txt'), { recursive: true });
    writeFileSync(join(wd, 'out', '1.txt'), 'stale frame 1\n');
    writeFileSync(join(wd, 'out', '2.txt'), 'stale frame 2\n');
    writeFileSync(join(wd, 'out', '3.txt', 'old.txt'), 'stale\n');
    const inv = farm.inventory(`${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h1, { workdir: wd })}\n`, 'stale.yaml');
    // Frame 1 writes nothing, frame 2 an empty file, frame 3 a directory.
    const script = 'case $0 in 1) ;; 2) : > out/2.txt ;; 3) mkdir out/3.txt && echo new > out/3.txt/new.txt ;; esac';
    const r = await runCli(
      [
        'run',
        inv,
        '1,3',
        'sh',
        '-c',
        script,
        '%d',
        '--out',
        'out/%d.txt=f/%d.txt',
        '--retries',
        '0',
        '--report',
        'r.json',
        '--log-dir',
        'logs',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(1);
    const byFrame = new Map(readReport(join(cwd, 'r.json')).tasks.map((t) => [t.frame, t]));
    expect(byFrame.get(1)).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/out\/1\.txt was not produced on h1/) as unknown,
    });
    expect(byFrame.get(2)).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/out\/2\.txt on h1 is empty/) as unknown,
    });
    // A file output must be a file: the stale directory was cleared, and the new one is refused.
    expect(byFrame.get(3)).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/out\/3\.txt on h1 is a directory where a file was expected/) as unknown,
    });
    expect(existsSync(join(cwd, 'f', '1.txt'))).toBe(false);
    expect(existsSync(join(cwd, 'f', '2.txt'))).toBe(false);
    expect(existsSync(join(cwd, 'f', '3.txt'))).toBe(false);
    expect(readdirSync(join(wd, 'out', '3.txt'))).toEqual(['new.txt']);
    // The failed attempts keep a log even though they printed nothing.
    expect(readdirSync(join(cwd, 'logs')).sort()).toEqual(['frame-1.h1.1.log', 'frame-2.h1.1.log', 'frame-3.h1.1.log']);
    // The stale file is gone from the host.
    expect(existsSync(join(wd, 'out', '1.txt'))).toBe(false);

    // A directory output ends with "/": fetched whole, then removed from the host.
    const r1 = await runCli(
      ['run', inv, '3', 'sh', '-c', script, '%d', '--out', 'out/%d.txt/=f/%d.txt/', '--retries', '0'],
      { cwd },
    );
    expect(r1.code, r1.stderr).toBe(0);
    expect(readdirSync(join(cwd, 'f', '3.txt'))).toEqual(['new.txt']);
    expect(existsSync(join(wd, 'out', '3.txt'))).toBe(false);

    // A renderer that does not create its output's directories finds them made.
    const r2 = await runCli(
      [
        'run',
        inv,
        '4,5',
        'sh',
        '-c',
        'echo "frame $0" > "$1"',
        '%d',
        'deep/er/%d.txt',
        '--out',
        'deep/er/%d.txt=f/%d.txt',
      ],
      { cwd },
    );
    expect(r2.code, r2.stderr).toBe(0);
    expect(readFileSync(join(cwd, 'f', '4.txt'), 'utf8')).toBe('frame 4\n');
    expect(existsSync(join(wd, 'deep', 'er', '4.txt'))).toBe(false);
  });

  it('brings back outputs of every size byte for byte, and leaves none of them on the host', async () => {
    const cwd = workspace();
    const wd = join(h2.workdir, 'sizes');
    // One byte, a few chunks of SFTP reads, and more than is fetched into memory (streamed to disk).
    const sizes = [1, 600 * 1024 + 7, 9 * 1024 * 1024 + 3];
    sizes.forEach((size, i) => writeFileSync(join(cwd, `data${i + 1}.bin`), randomBytes(size)));
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h2, { workdir: wd, slots: 3 })}\n`,
      'sizes.yaml',
    );
    const r = await runCli(
      ['run', inv, '1,3', 'cp', 'data%d.bin', 'out/%d.bin', '--in', 'data%d.bin', '--out', 'out/%d.bin=f/%d.bin'],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    for (let f = 1; f <= 3; f++)
      expect(readFileSync(join(cwd, 'f', `${f}.bin`)).equals(readFileSync(join(cwd, `data${f}.bin`)))).toBe(true);
    expect(readdirSync(join(wd, 'out'))).toEqual([]);
    // No temporary file is left beside the outputs.
    expect(readdirSync(join(cwd, 'f')).sort()).toEqual(['1.bin', '2.bin', '3.bin']);
  });

  it('refuses a host whose key does not match known_hosts and finishes on the others', async () => {
    const cwd = workspace();
    // A known_hosts where h2 is listed with h1's key: h2 now offers a "changed" key.
    const kh = join(farm.dir, 'known_hosts_wrong');
    writeFileSync(
      kh,
      `[127.0.0.1]:${h1.port} ${h1.hostKey}\n[127.0.0.1]:${h2.port} ${h1.hostKey}\n[127.0.0.1]:${h3.port} ${h3.hostKey}\n`,
    );
    const sub = 'wrongkey';
    const inv = farm.inventory(
      `${defaultsBlock(farm).replace(farm.knownHosts, kh)}hosts:\n${[h1, h2, h3].map((h) => hostEntry(farm, h, { workdir: join(h.workdir, sub) })).join('\n')}\n`,
      'wrongkey.yaml',
    );
    const r = await runCli(
      [
        'run',
        inv,
        '1,6',
        './render.sh',
        '%d',
        'out/%d.txt',
        '%{host}',
        '0',
        '--in',
        'render.sh',
        '--out',
        'out/%d.txt=f/%d.txt',
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    const report = readReport(join(cwd, 'r.json'));
    const h2r = report.hosts.find((h) => h.name === 'h2')!;
    expect(h2r.state).toBe('host key mismatch');
    expect(h2r.message).toMatch(/SHA256:[A-Za-z0-9+/]{43}/);
    expect(h2r.tasksDone).toBe(0);
    expect(report.tasks.every((t) => t.status === 'done' && t.host !== 'h2')).toBe(true);
    // Nothing ran on h2: not even its workdir was created.
    expect(existsSync(join(h2.workdir, sub))).toBe(false);
  });

  it('skips a host that is down at start, and exits 3 when no host is usable', async () => {
    const cwd = workspace();
    const deadPort = await freePort();
    const dead = `  - host: 127.0.0.1\n    name: dead\n    port: ${deadPort}\n`;
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h1, { workdir: join(h1.workdir, 'down') })}\n${dead}`,
      'down.yaml',
    );
    const r = await runCli(
      [
        'run',
        inv,
        '1,4',
        './render.sh',
        '%d',
        'out/%d.txt',
        '%{host}',
        '0',
        '--in',
        'render.sh',
        '--out',
        'out/%d.txt=f/%d.txt',
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    const report = readReport(join(cwd, 'r.json'));
    expect(report.hosts.find((h) => h.name === 'dead')).toMatchObject({ state: 'unreachable', tasksDone: 0 });
    expect(report.hosts.find((h) => h.name === 'dead')!.message).toMatch(/refused/);
    // The final summary names the down host and why, though the run succeeded on the others.
    expect(r.stderr).toMatch(
      /distray: 1 of 2 hosts was not used to the end:\ndistray: {3}dead: unreachable: .*refused/,
    );

    const none = farm.inventory(`${defaultsBlock(farm)}hosts:\n${dead}`, 'none.yaml');
    const r3 = await runCli(['run', none, '1,4', './render.sh', '%d', 'o', '--report', 'r3.json'], { cwd });
    expect(r3.code).toBe(3);
    expect(r3.stderr).toContain('no host was usable');
    // One line for the cause and the count, not one per frame.
    expect(r3.stderr).toContain('distray: FAILED frames 1-4 (4 frames): no host was usable\n');
    expect(r3.stderr.match(/FAILED/g)).toHaveLength(1);
    expect(readReport(join(cwd, 'r3.json')).ok).toBe(false);
  });

  it('reaches a target through a jump host', async () => {
    const cwd = workspace();
    const jump = `127.0.0.1:${h3.port}`;
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h2, { workdir: join(h2.workdir, 'jumped'), jump })}\n`,
      'jump.yaml',
    );
    const r = await runCli(
      [
        'run',
        inv,
        '1,3',
        './render.sh',
        '%d',
        'out/%d.txt',
        '%{host}',
        '0',
        '--in',
        'render.sh',
        '--out',
        'out/%d.txt=f/%d.txt',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(cwd, 'f', '2.txt'), 'utf8')).toBe('frame 2 rendered by h2\n');
    // The jump host's sshd forwarded the connection to h2's port.
    expect(readFileSync(h3.log, 'utf8')).toMatch(
      new RegExp(`direct_tcpip: originator .* target 127\\.0\\.0\\.1 port ${h2.port}(?!\\d)`),
    );
  });

  it('retries a failing frame on other hosts, then reports it failed with exit 1', async () => {
    const cwd = workspace();
    const env = '  env: { FAIL_FRAME: "4" }\n';
    const inv = farm.inventory(
      `${defaultsBlock(farm, env)}hosts:\n${[h1, h2, h3].map((h) => hostEntry(farm, h, { workdir: join(h.workdir, 'fail') })).join('\n')}\n`,
      'fail.yaml',
    );
    const r = await runCli(
      [
        'run',
        inv,
        '1,6',
        './render.sh',
        '%d',
        'out/%d.txt',
        '%{host}',
        '0',
        '--in',
        'render.sh',
        '--out',
        'out/%d.txt=f/%d.txt',
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(r.code).toBe(1);
    const report = readReport(join(cwd, 'r.json'));
    const four = report.tasks.find((t) => t.frame === 4)!;
    expect(four).toMatchObject({ status: 'failed', attempts: 3 });
    expect(four.error).toContain('exited with status 3');
    expect(four.error).toContain('cannot render frame 4');
    expect(report.tasks.filter((t) => t.status === 'done')).toHaveLength(5);
    // Each retry went to a host where frame 4 had not failed yet.
    expect(report.hosts.map((h) => h.failures).sort()).toEqual([1, 1, 1]);
    expect(existsSync(join(cwd, 'f', '4.txt'))).toBe(false);
    expect(r.stderr).toContain('FAILED frame 4');
  });

  it('sends once-per-host inputs, then only what changed', async () => {
    const cwd = workspace();
    mkdirSync(join(cwd, 'tex', 'sub'), { recursive: true });
    for (let i = 0; i < 20; i++)
      writeFileSync(join(cwd, 'tex', i % 2 ? 'sub' : '', `t${i}.txt`), `texture ${i}\n`.repeat(i + 1));
    writeFileSync(join(cwd, 'big.bin'), Buffer.alloc(3_000_000, 7));
    // One host per run: a run ends when its tasks are done, whether or not another host has joined yet.
    for (const h of [h1, h2]) {
      const inv = farm.inventory(
        `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h, { workdir: join(h.workdir, 'inputs') })}\n`,
        `inputs-${h.name}.yaml`,
      );
      const args = [
        'run',
        inv,
        '1,2',
        'sh',
        '-c',
        'cat assets/tex/sub/t3.txt > out$0',
        '%d',
        '--in',
        'tex=assets/tex',
        '--in',
        'big.bin',
        '--out',
        'out%d=o%d',
        '--force',
      ];
      writeFileSync(join(cwd, 'tex', 'sub', 't3.txt'), 'texture 3\n'.repeat(4));
      const first = await runCli(args, { cwd });
      expect(first.code, first.stderr).toBe(0);
      expect(first.stderr).toMatch(new RegExp(`host ${h.name}: inputs: sent 21 of 21 files \\(3\\.0 MB\\)`));
      expect(readFileSync(join(cwd, 'o1'), 'utf8')).toBe('texture 3\n'.repeat(4));
      expect(readFileSync(join(h.workdir, 'inputs', 'assets', 'tex', 'sub', 't9.txt'))).toEqual(
        readFileSync(join(cwd, 'tex', 'sub', 't9.txt')),
      );
      expect(readFileSync(join(h.workdir, 'inputs', 'big.bin')).equals(readFileSync(join(cwd, 'big.bin')))).toBe(true);
      const second = await runCli(args, { cwd });
      expect(second.stderr).toMatch(
        new RegExp(`host ${h.name}: inputs: sent 0 of 21 files \\(0\\.0 MB\\) .* 21 already there unchanged`),
      );
      writeFileSync(join(cwd, 'tex', 'sub', 't3.txt'), 'changed, same size?\n');
      const third = await runCli(args, { cwd });
      expect(third.stderr).toMatch(new RegExp(`host ${h.name}: inputs: sent 1 of 21 files`));
      expect(readFileSync(join(cwd, 'o2'), 'utf8')).toBe('changed, same size?\n');
    }
  });

  it('renders frames with POV-Ray from Debian', async () => {
    const cwd = workspace();
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${[h1, h2].map((h) => hostEntry(farm, h, { workdir: join(h.workdir, 'pov') })).join('\n')}\n`,
      'pov.yaml',
    );
    const r = await runCli(
      [
        'run',
        inv,
        '0,3',
        'povray',
        '+Iscene.pov',
        '+Opov-%02d.png',
        '+W80',
        '+H60',
        '-D',
        '-V',
        '+FN',
        'Declare=frame=%d',
        '--in',
        'scene.pov',
        '--out',
        'pov-%02d.png=pov/%02d.png',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    const metas = await Promise.all([0, 1, 2, 3].map((f) => sharp(join(cwd, 'pov', `0${f}.png`)).metadata()));
    for (const m of metas) expect([m.width, m.height]).toEqual([80, 60]);
    // The sphere moves: consecutive frames differ.
    const [a, b] = await Promise.all(
      [0, 1].map((f) =>
        sharp(join(cwd, 'pov', `0${f}.png`))
          .raw()
          .toBuffer(),
      ),
    );
    expect(a!.equals(b!)).toBe(false);
  });
});
