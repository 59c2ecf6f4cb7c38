import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import { shellJoin } from '../../src/ssh/quote.js';

// The live view on a real terminal: util-linux's script(1) gives the CLI a pty. Runs on the local host only.
const hasScript = existsSync('/usr/bin/script');
const dir = mkdtempSync(join(tmpdir(), 'distray-term-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'local.yaml'), 'hosts:\n  - local: true\n');
const RUN = ['run', 'local.yaml', '1,2', 'sh', '-c', 'echo %d > o%d.txt', '--out', 'o%d.txt', '--force'];

function onTerminal(env: Record<string, string>): string {
  const command = `stty cols 120 rows 40; ${shellJoin([process.execPath, CLI, ...RUN])}`;
  const r = spawnSync('script', ['-qec', command, '/dev/null'], {
    cwd: dir,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return r.stdout;
}

const COLOUR = new RegExp(`${String.fromCharCode(27)}\\[(?:2|3\\d|9\\d)m`);

describe('on a terminal', () => {
  it.skipIf(!hasScript)('shows the live view in colour, none with NO_COLOR, and plain lines with TERM=dumb', () => {
    const live = onTerminal({ TERM: 'xterm' });
    expect(live).toMatch(/local: /);
    expect(live).toMatch(COLOUR);

    const noColour = onTerminal({ TERM: 'xterm', NO_COLOR: '1' });
    expect(noColour).toMatch(/local: /);
    expect(noColour).not.toMatch(COLOUR);

    const dumb = onTerminal({ TERM: 'dumb' });
    expect(dumb).toMatch(/^distray: frame 1 done on local in /m);
    expect(dumb).not.toContain('\x1b');
  });

  it.skipIf(!hasScript)(
    'draws the live view on the terminal and writes nothing to stdout when only stdout is redirected',
    () => {
      const command = `stty cols 120 rows 40; ${shellJoin([process.execPath, CLI, ...RUN])} > stdout.txt`;
      const r = spawnSync('script', ['-qec', command, '/dev/null'], {
        cwd: dir,
        env: { ...process.env, TERM: 'xterm' },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.stdout).toMatch(/local: /);
      expect(r.stdout).toMatch(/distray: 2 done/);
      expect(readFileSync(join(dir, 'stdout.txt'), 'utf8')).toBe('');
    },
  );

  it('prints only failures and the summary with --quiet', async () => {
    const r = await runCli([...RUN, '--quiet'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^distray: 2 done in \d+\.\ds \(exit 0\)\n$/);
  });

  it("shows a failing renderer's escape sequences instead of sending them to the terminal, in every view", async () => {
    const script = String.raw`printf '\033]0;owned\007\033[2Jgone\n' >&2; exit 3`;
    for (const view of ['--plain', '--quiet']) {
      const r = await runCli(['run', 'local.yaml', '1', 'sh', '-c', script, '--retries', '0', view], { cwd: dir });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(String.raw`\x1b]0;owned\x07\x1b[2Jgone`);
      // eslint-disable-next-line no-control-regex
      expect(r.stderr).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
    }
  });
});
