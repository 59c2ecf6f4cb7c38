import { EventEmitter } from 'node:events';
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
