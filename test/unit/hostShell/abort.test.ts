import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HostShell } from '../../../src/hostShell/hostShell.js';

/** A host shell whose host never answers: what it is sent is taken, and no line comes back. */
function silentShell(): HostShell {
  return new HostShell(
    {
      stdin: new PassThrough(),
      stdout: new PassThrough(),
      stderr: new PassThrough(),
      closed: new Promise<Error>(() => {}),
      end: () => {},
      kill: () => {},
    },
    'tok',
    'h',
  );
}

describe('a host shell on a host that never answers', () => {
  it.each<[string, (shell: HostShell, signal: AbortSignal) => Promise<unknown>]>([
    ['rm', (shell, signal) => shell.fileOp('rm', ['a', 'b'], { signal })],
    ['mkdir', (shell, signal) => shell.fileOp('mkdir', ['d'], { signal })],
    ['mv', (shell, signal) => shell.fileOp('mv', ['up.part', 'f'], { signal })],
    ['a command', (shell, signal) => shell.command(['true'], () => Promise.resolve(Buffer.alloc(0)), { signal })],
    ['the wait for its login', (shell, signal) => shell.ready(3_600_000, { signal })],
  ])('%s settles once aborted, naming the host, with the signal’s reason as its cause', async (_name, call) => {
    const shell = silentShell();
    const stop = new AbortController();
    const pending = call(shell, stop.signal);
    await new Promise((resolve) => setImmediate(resolve));
    const reason = new Error('stopped by the test');
    stop.abort(reason);
    const err = (await pending.then(
      () => new Error('it resolved'),
      (e: unknown) => e,
    )) as Error;
    expect(err.message).toMatch(/^h: .*(stopped|ended)/);
    expect(err.cause).toBe(reason);
  });
});
