import { mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { protocolMark } from '../../src/hostShell/protocol.js';
import { SHELLS, spawnHostShell } from '../helpers/shells.js';
import { WAIT_MS, within } from '../helpers/wait.js';

// An answer with a letter per path or output (a removal of thousands of paths, a chunk of thousands
// of frames) made a line longer than PIPE_BUF (4 KiB), which the shells write in pieces (bash and
// busybox 4 KiB at a time, dash the parts of its format): a line another lane or file operation said
// at that moment landed inside it, both were lost, and what they answered was waited for for ever
// (a removal, and every removal after it on that host; a chunk's end, and the run's). Failed about
// one run in two before the host shell sent such letters ahead on short lines.

let root: string;
const kills: Array<() => void> = [];
afterEach(() => {
  for (const kill of kills.splice(0)) kill();
  rmSync(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
});

/** How many lines say `word` in what the shell wrote, however its writes were cut up. */
const count = (raw: string, mark: string, word: string): number => raw.split(`${mark}${word} `).length - 1;

describe.each(SHELLS)('long answers of the host shell under $name', ({ argv: sh }) => {
  it('answers many large file operations and many tasks of many outputs at once, none lost', async () => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'distray-long-')));
    const wd = join(root, 'wd');
    mkdirSync(join(wd, 'd'), { recursive: true });
    const asks = 8;
    const token = `long-${Date.now().toString(36)}`;
    const { shell, child } = spawnHostShell(sh, wd, { token, slots: asks });
    kills.push(() => process.kill(-child.pid!, 'SIGKILL'));
    await shell.ready(60_000);
    const mark = protocolMark(token);
    // Every path is a directory already there, every output missing: each is answered with one letter at once.
    const dirs = Array.from({ length: 5000 }, () => 'd');
    const outputs = Array.from({ length: 5000 }, (_, i) => `o${i}`);
    let raw = '';
    const allSaid = new Promise<void>((resolve) => {
      child.stdout.on('data', (c: Buffer) => {
        raw += c.toString('latin1');
        // Every answer has come, and the line it ends with (however the pieces of the lines were mixed).
        if (count(raw, mark, 'did') === asks && count(raw, mark, 'exit') === asks && raw.endsWith('\n')) resolve();
      });
    });
    let answered = 0;
    const never = new AbortController().signal;
    // Held back while they are written, so that the shell's writers wait on a full pipe together.
    child.stdout.pause();
    for (let i = 0; i < asks; i++) {
      shell.fileOp('mkdir', dirs).then(
        (st) => st.length === dirs.length && st.every((s) => s === 'done') && answered++,
        () => {},
      );
      void shell
        .run(i, `t${i}`, ['true'], { outputs, signal: never })
        .then(
          (e) =>
            e.code === 0 &&
            e.outputs?.length === outputs.length &&
            e.outputs.every((s) => s === 'missing') &&
            answered++,
        );
    }
    child.stdout.resume();
    await within(allSaid, 3 * WAIT_MS, 'every answer of the host shell on its stdout');
    // The shell's own reader has read the same bytes by now.
    await new Promise((r) => setImmediate(r));
    expect(answered).toBe(2 * asks);
  }, 120_000);
});
