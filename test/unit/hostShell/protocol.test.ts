import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HostShell, visible, type TaskExit } from '../../../src/hostShell/hostShell.js';
import { protocolLine } from '../../../src/hostShell/protocol.js';

/** A HostShell over plain streams: the test writes what the host would print. */
function fakeShell(): { shell: HostShell; print: (text: string) => void; warnings: string[]; sent: () => string } {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let sent = '';
  stdin.on('data', (c: Buffer) => (sent += c.toString()));
  const warnings: string[] = [];
  const shell = new HostShell(
    { stdin, stdout, stderr, closed: new Promise<Error>(() => {}), end: () => {}, kill: () => {} },
    'tok-9',
    'h1',
    (m) => warnings.push(m),
  );
  return { shell, print: (text) => stdout.write(Buffer.from(text, 'latin1')), warnings, sent: () => sent };
}

const line = (words: string): string => `${protocolLine('tok-9', words)}\n`;

describe('the host shell protocol', () => {
  it('keeps a protocol line that stray bytes were glued before, and warns once, naming the host', async () => {
    const { shell, print, warnings } = fakeShell();
    print(`welcome\x1b[2J, no newline${line('ready')}`);
    await shell.ready(60_000);
    const started: string[] = [];
    const exit = shell.run(0, 'a', ['true'], {
      outputs: ['o.png'],
      onStart: () => started.push('a'),
      signal: new AbortController().signal,
    });
    // A login's leftover prints one byte after the ready line, then another without a newline.
    print(`x${line('start a')}`);
    print(`\xff\x01${line('exit a 0 1f')}`);
    expect(await exit).toMatchObject<TaskExit>({ code: 0, wrote: true, outputs: ['file'] });
    expect(started).toEqual(['a']);
    expect(warnings).toEqual([
      expect.stringMatching(/^host h1: its login printed "welcome\\x1b\[2J, no newline" before distray started/),
    ]);
  });

  it('ignores look-alike lines without the token, and lines of another shell', async () => {
    const { shell, print, warnings } = fakeShell();
    print(`distray:tok-1 ready\n${line('ready')}`);
    await shell.ready(60_000);
    const exit = shell.run(0, 'b', ['true'], { signal: new AbortController().signal });
    let settled = false;
    void exit.then(() => (settled = true));
    print(`exit b 0 0\n${protocolLine('tok-1', 'exit b 0 0')}\n`);
    await new Promise((r) => setTimeout(r, 10));
    expect(settled).toBe(false);
    print(`\x07${line('exit b 3 0')}`);
    expect((await exit).code).toBe(3);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/its login printed "distray:tok-1 ready" before distray started/);
  });

  it('warns of stray output after the ready line too, control characters made visible', async () => {
    const { shell, print, warnings } = fakeShell();
    print(line('ready'));
    await shell.ready(60_000);
    print('\x1b]0;title\x07\n');
    expect(warnings).toEqual([expect.stringContaining('"\\x1b]0;title\\x07" while distray ran')]);
  });

  it('makes every control character and byte past ASCII visible', () => {
    expect(visible('a\tb\r\n\x00\x7f\xe9z')).toBe('a\\x09b\\x0d\\x0a\\x00\\x7f\\xe9z');
  });
});
