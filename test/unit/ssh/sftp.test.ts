import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SFTPWrapper } from 'ssh2';
import { describe, expect, it } from 'vitest';
import { Sftp } from '../../../src/ssh/sftp.js';

/** An SFTP channel that answers nothing: what matters here is what an aborted signal does. */
function silentChannel(): SFTPWrapper {
  const channel = new EventEmitter() as unknown as SFTPWrapper & { open: () => void; end: () => void };
  channel.open = () => {};
  channel.end = () => {};
  return channel;
}

describe('Sftp.fetchFile', () => {
  it('rejects at once when stopped, leaving no unhandled rejection behind', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown): void => void unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      const sftp = new Sftp(silentChannel(), 'h', true);
      const stop = new AbortController();
      stop.abort();
      await expect(sftp.fetchFile('/x', '/tmp/never', { signal: stop.signal })).rejects.toThrow(/stopped/);
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

/** A host that never answers: every request is taken and left unanswered. */
function stalledChannel(): SFTPWrapper {
  const channel = new EventEmitter();
  return new Proxy(channel, {
    get: (target, key) => (key in target ? (target as never)[key] : () => {}),
  }) as unknown as SFTPWrapper;
}

describe('every SFTP file operation on a host that never answers', () => {
  const local = join(tmpdir(), 'distray-sftp-never');
  it.each<[string, (sftp: Sftp, signal: AbortSignal) => Promise<unknown>]>([
    ['lstat', (sftp, signal) => sftp.lstat('/x', { signal })],
    ['statFollowing', (sftp, signal) => sftp.statFollowing('/x', { signal })],
    ['realpath', (sftp, signal) => sftp.realpath('/x', { signal })],
    ['readdir', (sftp, signal) => sftp.readdir('/x', { signal })],
    ['mkdir', (sftp, signal) => sftp.mkdir('/x', { signal })],
    ['unlink', (sftp, signal) => sftp.unlink('/x', { signal })],
    ['writeFile', (sftp, signal) => sftp.writeFile('/x', 'data', { signal })],
    ['readTail', (sftp, signal) => sftp.readTail('/x', 100, { signal })],
    ['putFile', (sftp, signal) => sftp.putFile(fileURLToPath(import.meta.url), '/x', { mode: 0o644, signal })],
    ['fetchFile', (sftp, signal) => sftp.fetchFile('/x', local, { signal })],
  ])("%s settles once aborted, with the signal's reason as its cause", async (_name, call) => {
    const sftp = new Sftp(stalledChannel(), 'h', true);
    const stop = new AbortController();
    const pending = call(sftp, stop.signal);
    // Asked, and unanswered: it is waiting on the host now.
    await new Promise((resolve) => setImmediate(resolve));
    const reason = new Error('stopped by the test');
    stop.abort(reason);
    const err = (await pending.then(
      () => new Error('it resolved'),
      (e: unknown) => e,
    )) as Error;
    expect(err.message).toBe('h: the transfer was stopped');
    expect(err.cause).toBe(reason);
  });
});

/** An SFTP channel serving one regular file, whatever path is asked for. */
function fileChannel(content: Buffer): SFTPWrapper {
  const handle = Buffer.from('h');
  const channel = Object.assign(new EventEmitter(), {
    open: (_p: string, _f: string, cb: (err: Error | null, h: Buffer) => void) => cb(null, handle),
    fstat: (_h: Buffer, cb: (err: Error | null, s: unknown) => void) =>
      cb(null, { size: content.length, isFile: () => true }),
    read: (
      _h: Buffer,
      buf: Buffer,
      offset: number,
      len: number,
      at: number,
      cb: (err: Error | null, n: number) => void,
    ) => cb(null, content.copy(buf, offset, at, at + len)),
    close: (_h: Buffer, cb: (err: Error | null) => void) => cb(null),
    end: () => {},
  });
  return channel as unknown as SFTPWrapper;
}

describe('Sftp.fetchFile into a local file', () => {
  it('creates the local file new: a link at its name is refused, never followed, and a FIFO there does not block', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'distray-fetch-'));
    try {
      const sftp = new Sftp(fileChannel(Buffer.from('from the host\n')), 'h', true);
      expect(await sftp.fetchFile('/x', join(dir, 'new.bin'))).toBe(14);
      expect(readFileSync(join(dir, 'new.bin'), 'utf8')).toBe('from the host\n');
      const victim = join(dir, 'victim.txt');
      writeFileSync(victim, 'keep me\n');
      symlinkSync(victim, join(dir, 'link.bin'));
      await expect(sftp.fetchFile('/x', join(dir, 'link.bin'))).rejects.toMatchObject({ code: 'EEXIST' });
      expect(readFileSync(victim, 'utf8')).toBe('keep me\n');
      execFileSync('mkfifo', [join(dir, 'fifo.bin')]);
      await expect(sftp.fetchFile('/x', join(dir, 'fifo.bin'))).rejects.toMatchObject({ code: 'EEXIST' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
