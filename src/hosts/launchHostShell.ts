import { ConnectionError } from '../errors.js';
import { EXIT_NO_WORKDIR } from '../hostShell/protocol.js';
import type { Connection, ConnectionPool } from './connectionPool.js';
import { HostShell } from '../hostShell/hostShell.js';

/** The server would not open one more channel on a live connection: its MaxSessions is lower than assumed. */
export class ChannelRefused extends Error {
  constructor(override readonly cause: ConnectionError) {
    super(cause.message);
  }
}

/**
 * Starts a host shell (`command`, see hostShell/protocol.ts) on a channel of `conn`
 * and hands back the controller's side of it. The shell is not ready yet:
 * the login runs first (HostShell.ready waits for it).
 */
export function launchHostShell(
  conn: Connection,
  pool: ConnectionPool,
  o: { host: string; token: string; command: string; workdir: string; warn?: (message: string) => void },
): Promise<HostShell> {
  conn.channels++;
  return new Promise<HostShell>((resolve, reject) => {
    conn.client.exec(o.command, (err, channel) => {
      if (err) {
        conn.channels--;
        reject(
          pool.lostError ??
            new ChannelRefused(new ConnectionError('error', `${o.host}: cannot open a channel: ${err.message}`)),
        );
        return;
      }
      channel.on('error', () => {});
      const closed = new Promise<Error>((done) => {
        let status: number | null = null;
        channel.on('exit', (code: number | null) => (status = code));
        channel.on('close', () => {
          conn.channels--;
          done(
            pool.lostError ??
              new ConnectionError(
                status === EXIT_NO_WORKDIR ? 'workdir' : 'lost',
                status === EXIT_NO_WORKDIR
                  ? `${o.host}: cannot use the workdir ${o.workdir}`
                  : `${o.host}: the host shell exited (status ${status ?? 'none'})`,
              ),
          );
        });
        void pool.lost.then((e) => done(e));
      });
      resolve(
        new HostShell(
          {
            stdin: channel,
            stdout: channel,
            stderr: channel.stderr,
            closed,
            end: () => channel.end(),
            kill: () => channel.close(),
          },
          o.token,
          o.host,
          o.warn,
        ),
      );
    });
  });
}
