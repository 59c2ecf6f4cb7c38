import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { defaultsBlock, hostEntry, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';

// Every distray command the README shows, run as written against a farm of
// two real sshd hosts on loopback, with one change: a run's frame range is
// cut to its first two frames (the README renders 120 and 250 frames at
// full HD, minutes of CPU that would tell nothing more). The quick start's
// command runs in a copy of examples/, as it does in a checkout. The renderers are
// the real POV-Ray; for the commands that name a renderer the test machine
// does not have, a stand-in on the hosts' PATH writes what the real one would:
// `build/ray` (the intro's own renderer, in each host's workdir) and
// `blender` (its -o/-F/-f/-s/-e/-a arguments, a flat image of the frame's
// size). `npm install` lines are the package tests' (test/package).

const README = fileURLToPath(new URL('../../README.md', import.meta.url));
const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));

interface Example {
  line: number;
  argv: string[];
}

/**
 * Shell words, as sh reads them: single quotes keep everything (newlines
 * too), double quotes and backslashes as in sh, a backslash-newline joins
 * lines, an unquoted newline, `;` or `&&` ends a command, `#` at a word's
 * start comments to the end of the line. Enough for the README's commands.
 */
function shellCommands(text: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word: string | null = null;
  const end = (): void => {
    if (word !== null) words.push(word);
    word = null;
  };
  const endCommand = (): void => {
    end();
    if (words.length > 0) commands.push(words);
    words = [];
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && text[i + 1] === '\n') i++;
    else if (c === '\\') word = (word ?? '') + (text[++i] ?? '');
    else if (c === "'") {
      const close = text.indexOf("'", i + 1);
      word = (word ?? '') + text.slice(i + 1, close);
      i = close;
    } else if (c === '"') {
      let s = '';
      for (i++; text[i] !== '"'; i++) s += text[i] === '\\' && '"\\$`'.includes(text[i + 1]!) ? text[++i] : text[i];
      word = (word ?? '') + s;
    } else if (c === '#' && word === null) {
      const newline = text.indexOf('\n', i);
      i = (newline < 0 ? text.length : newline) - 1;
    } else if (c === '\n' || c === ';') endCommand();
    else if (c === '&' && text[i + 1] === '&') {
      endCommand();
      i++;
    } else if (c === ' ' || c === '\t') end();
    else word = (word ?? '') + c;
  }
  endCommand();
  return commands;
}

/** The README's distray commands: in its sh blocks, and as inline code in its text. */
function readmeExamples(md: string): Example[] {
  const found: Example[] = [];
  const lineOf = (offset: number): number => md.slice(0, offset).split('\n').length;
  const fence = /^```sh\n([\s\S]*?)^```$/gm;
  for (const m of md.matchAll(fence))
    for (const argv of shellCommands(m[1]!)) if (argv[0] === 'distray') found.push({ line: lineOf(m.index), argv });
  const prose = md.replace(fence, (block) => block.replace(/[^\n]/g, ' '));
  for (const m of prose.matchAll(/`(distray (?:run|check|clean) [^`]+)`/g))
    found.push({ line: lineOf(m.index), argv: shellCommands(m[1]!)[0]! });
  return found;
}

/** A run's frame range cut to its first two frames: `1,120` -> `1,2`. */
function firstTwoFrames(argv: readonly string[]): string[] {
  const out = [...argv];
  const m = /^(-?\d+),(-?\d+)$/.exec(out[3] ?? '');
  if (out[1] === 'run' && m) out[3] = `${m[1]},${Math.min(Number(m[2]), Number(m[1]) + 1)}`;
  return out;
}

/** The local files a run makes for `frames`: its --stitch frames, else its --out files that are one per frame. */
function expectedFiles(argv: readonly string[]): string[] {
  const range = /^(-?\d+),(-?\d+)$/.exec(argv[3] ?? '');
  if (argv[1] !== 'run' || !range || argv.includes('--dry-run')) return [];
  const [first, last] = [Number(range[1]), Number(range[2])];
  const after = (flag: string): string[] => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));
  const stitch = after('--stitch');
  const patterns = stitch.length > 0 ? stitch : after('--out').map((o) => o.slice(o.indexOf('=') + 1));
  const files: string[] = [];
  for (let f = first; f <= last; f++)
    for (const p of patterns)
      files.push(
        p.replace(/%(0?)(\d*)d/g, (_, zero: string, width: string) =>
          String(f).padStart(Number(width || 0), zero ? '0' : ' '),
        ),
      );
  return files;
}

/** A flat PNG: `blender`'s stand-in writes these. */
const PNG_WRITER = `
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
const chunk = (type, data) => {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([len, body, crc]);
};
export function png(path, width, height, shade) {
  const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4); ihdr[8] = 8; ihdr[9] = 2;
  const row = Buffer.alloc(1 + width * 3, shade); row[0] = 0;
  const data = deflateSync(Buffer.concat(Array.from({ length: height }, () => row)));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', data), chunk('IEND', Buffer.alloc(0))]));
}
`;

/** Blender's command line as the README uses it: -b FILE, -o //PATTERN####, -F, -E, --python-expr, then -f N or -s A -e B -a. */
const BLENDER = `#!/usr/bin/env node
import { dirname, join } from 'node:path';
import { png } from './png.mjs';
const args = process.argv.slice(2);
let blend, output, start, end, width = 1920, height = 1080;
const frames = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '-b') blend = args[++i];
  else if (a === '-o') output = args[++i];
  else if (a === '-F' || a === '-E') i++;
  else if (a === '--python-expr') {
    const expr = args[++i];
    const m = /resolution_x, r.resolution_y, r.resolution_percentage = (\\d+), (\\d+)/.exec(expr);
    if (m) [width, height] = [Number(m[1]), Number(m[2])];
  } else if (a === '-f') frames.push(Number(args[++i]));
  else if (a === '-s') start = Number(args[++i]);
  else if (a === '-e') end = Number(args[++i]);
  else if (a === '-a') for (let f = start; f <= end; f++) frames.push(f);
  else { console.error('blender stand-in: unknown argument ' + a); process.exit(2); }
}
if (!blend || !output || frames.length === 0) { console.error('blender stand-in: -b, -o and a frame are required'); process.exit(2); }
for (const f of frames) {
  const path = output.replace(/^\\/\\//, dirname(blend) + '/').replace(/#+/, (h) => String(f).padStart(h.length, '0')) + '.png';
  png(join(process.cwd(), path), width, height, (f * 40) % 256);
}
`;

/** The intro's renderer: \`build/ray FRAME\` writes anim/out-FRAME.png in the workdir. */
const RAY = `#!/usr/bin/env node
import { png } from '../png.mjs';
const frame = Number(process.argv[2]);
png('anim/out-' + String(frame).padStart(4, '0') + '.png', 64, 36, (frame * 40) % 256);
`;

let farm: Farm;
let hosts: SshdHost[];
let cwd: string;

beforeAll(async () => {
  farm = startFarm();
  hosts = [await farm.start('readme1'), await farm.start('readme2')];
  const bin = join(farm.dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'png.mjs'), PNG_WRITER);
  writeFileSync(join(bin, 'blender'), BLENDER);
  chmodSync(join(bin, 'blender'), 0o755);
  for (const h of hosts) {
    mkdirSync(join(h.workdir, 'build'), { recursive: true });
    writeFileSync(join(h.workdir, 'png.mjs'), PNG_WRITER);
    writeFileSync(join(h.workdir, 'build', 'ray'), RAY);
    chmodSync(join(h.workdir, 'build', 'ray'), 0o755);
  }
  cwd = join(farm.dir, 'project');
  mkdirSync(cwd);
  // The quick start's command runs in a checkout: its inventory and renderer are in examples/.
  cpSync(fileURLToPath(new URL('../../examples', import.meta.url)), join(cwd, 'examples'), { recursive: true });
  writeFileSync(join(cwd, 'scene.pov'), readFileSync(join(fixtures, 'scene.pov')));
  writeFileSync(join(cwd, 'scene.blend'), 'BLENDER-v304 (a stand-in .blend: the stand-in blender reads none of it)\n');
  const inventory =
    `${defaultsBlock(farm, `  slots: 2\n  env:\n    PATH: ${bin}:/usr/local/bin:/usr/bin:/bin\n`)}hosts:\n` +
    `${hosts.map((h) => hostEntry(farm, h)).join('\n')}\n`;
  for (const name of ['hosts.yaml', 'farm.yaml']) writeFileSync(join(cwd, name), inventory);
});

afterAll(async () => {
  await farm?.stop();
});

const examples = readmeExamples(readFileSync(README, 'utf8'));

describe("the README's commands", () => {
  it('are found: the intro, the quick start, the farm set-up, every recipe, the help', () => {
    const found = examples.map((e) => e.argv.join(' '));
    expect(found.length).toBeGreaterThanOrEqual(11);
    for (const part of ['build/ray', 'examples/local.yaml', 'check farm.yaml', '--dry-run', '--help'])
      expect(
        found.filter((c) => c.includes(part)),
        part,
      ).toHaveLength(1);
    expect(found.filter((c) => c.includes(' povray ')).length).toBeGreaterThanOrEqual(3);
    expect(found.filter((c) => c.includes(' blender ')).length).toBeGreaterThanOrEqual(4);
  });

  it('reads shell words as sh does', () => {
    expect(shellCommands(`a 'b\nc' "d \\"e\\"" f\\\n  g # h\ni && j`)).toEqual([
      ['a', 'b\nc', 'd "e"', 'f', 'g'],
      ['i'],
      ['j'],
    ]);
  });

  it.each(examples.map((e) => [e.line, e] as const))('README.md:%i runs as written', async (_line, example) => {
    const argv = firstTwoFrames(example.argv);
    const r = await runCli(argv.slice(1), { cwd });
    expect(r.code, `${argv.join(' ')}\n${r.stderr}`).toBe(0);
    for (const file of expectedFiles(argv)) expect(existsSync(join(cwd, file)), file).toBe(true);
  });
});
