import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completionScript } from '../../../src/cli/completion.js';
import { CHECK_OPTIONS, CLEAN_OPTIONS, RUN_OPTIONS } from '../../../src/cli/options.js';

// The completion scripts are made from the option tables the parsers use: every option is completed, and the bash
// one, sourced into a real bash, answers what a user's Tab would get.

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'distray-completion-'));
  writeFileSync(join(dir, 'farm.yaml'), 'hosts: []\n');
  writeFileSync(join(dir, 'fast.yaml'), 'hosts: []\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What bash completes for the command line `words` (the last one being completed). */
function bashCompletes(...words: string[]): string[] {
  const script = `${completionScript('bash')}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_distray
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['--norc', '-c', script], { cwd: dir, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .sort();
}

const has = (shell: string): boolean => spawnSync('sh', ['-c', `command -v ${shell}`]).status === 0;

describe('distray completion', () => {
  it('bash: commands, each command its options, fixed values, file names', () => {
    expect(bashCompletes('distray', '')).toEqual(['--help', '--version', 'check', 'clean', 'completion', 'run']);
    expect(bashCompletes('distray', 'run', '--ou')).toEqual(['--out']);
    expect(bashCompletes('distray', 'run', 'farm.yaml', '1,9', '--order', '')).toEqual(['preview', 'sequential']);
    expect(bashCompletes('distray', 'clean', '--d')).toEqual(['--dry-run']);
    expect(bashCompletes('distray', 'check', 'fa')).toEqual(['farm.yaml', 'fast.yaml']);
    expect(bashCompletes('distray', 'run', 'farm.yaml', '--report', 'fa')).toEqual(['farm.yaml', 'fast.yaml']);
    expect(bashCompletes('distray', 'completion', '')).toEqual(['bash', 'fish', 'zsh']);
    // Every option of every command, from the same tables as the parsers.
    const all = (cmd: string): string[] => bashCompletes('distray', cmd, '--');
    expect(all('run')).toEqual([...Object.keys(RUN_OPTIONS).map((o) => `--${o}`), '--help'].sort());
    expect(all('check')).toEqual([...Object.keys(CHECK_OPTIONS).map((o) => `--${o}`), '--help'].sort());
    expect(all('clean')).toEqual([...Object.keys(CLEAN_OPTIONS).map((o) => `--${o}`), '--help'].sort());
  });

  it('zsh and fish: every option is in the script, and the shell reads it', () => {
    for (const shell of ['zsh', 'fish'] as const) {
      const text = completionScript(shell);
      for (const o of [...Object.keys(RUN_OPTIONS), ...Object.keys(CHECK_OPTIONS), ...Object.keys(CLEAN_OPTIONS)])
        expect(text, `${shell}: --${o}`).toMatch(shell === 'zsh' ? `--${o}` : `-l ${o} `);
      // Checked for syntax where the shell is installed (CI installs both).
      if (!has(shell)) continue;
      const file = join(dir, `distray.${shell}`);
      writeFileSync(file, text);
      const r = spawnSync(shell, ['-n', file], { encoding: 'utf8' });
      expect(r.status, `${shell} -n: ${r.stderr}`).toBe(0);
    }
  });

  it('refuses a shell it has no script for', () => {
    expect(() => completionScript('tcsh')).toThrow(
      /no completion for "tcsh": expected distray completion bash\|zsh\|fish/,
    );
    expect(() => completionScript(undefined)).toThrow(/no shell given/);
  });
});
