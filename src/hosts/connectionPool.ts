import { ConnectionError } from '../errors.js';
import type { HostConfig } from '../inventory/types.js';
import { connectEndpoint, endClient, type Client, type ConnectContext } from '../ssh/connect.js';

/**
 * Channels assumed per connection (the SFTP channel and the host shell need
 * two). OpenSSH's MaxSessions defaults to 10; a server that refuses a
 * channel lowers this for that connection and another connection is opened.
 */
export const CHANNELS_PER_CONNECTION = 8;

export interface Connection {
  client: Client;
  /** Channels open on it now. */
  channels: number;
  /** Channels this connection takes; lowered when the server refuses one (a smaller MaxSessions). */
  capacity: number;
}

/**
 * A host's SSH connections: as many as its channels need, opened one at a
 * time. Any of them going away (a reset, keepalive giving up) loses the
 * host: `lost` settles once, with why.
 */
export class ConnectionPool {
  readonly lost: Promise<Error>;
  private markLost!: (err: Error) => void;
  /** Why the host was lost, once it was. */
  lostError: Error | undefined;
  private closing = false;
  private readonly connections: Connection[] = [];
  private opening: Promise<Connection> | undefined;

  constructor(
    private readonly host: HostConfig,
    private readonly ctx: ConnectContext,
    first: Client,
  ) {
    this.lost = new Promise((resolve) => (this.markLost = resolve));
    this.attach(first);
  }

  /** The first connection (the one the host was reached on). */
  get first(): Connection {
    return this.connections[0]!;
  }

  private attach(client: Client): Connection {
    const conn: Connection = { client, channels: 0, capacity: CHANNELS_PER_CONNECTION };
    this.connections.push(conn);
    const onGone = (err?: Error): void => {
      if (this.closing || this.lostError) return;
      this.lostError = new ConnectionError(
        'lost',
        `lost the connection to ${this.host.name}${err ? `: ${err.message}` : ''}`,
      );
      this.markLost(this.lostError);
    };
    client.on('error', onGone);
    client.on('close', () => onGone());
    return conn;
  }

  /** A connection with room for one more channel, opening another one if none has room. */
  async roomy(): Promise<Connection> {
    for (;;) {
      if (this.lostError) throw this.lostError;
      const conn = this.connections.find((c) => c.channels < c.capacity);
      if (conn) return conn;
      // One new connection at a time, shared by every channel waiting for room.
      this.opening ??= connectEndpoint(this.host, this.ctx)
        .then((client) => this.attach(client))
        .finally(() => (this.opening = undefined));
      await this.opening;
    }
  }

  /** The server refused a channel on `conn` while it had `conn.channels` open: that is its limit. */
  refused(conn: Connection): void {
    conn.capacity = conn.channels;
  }

  /** Ends every connection (the host shells see end of input and wait out their grace); a silent one is cut. */
  close(): void {
    this.closing = true;
    void this.opening?.then((c) => c.client.destroy()).catch(() => {});
    for (const c of this.connections) endClient(c.client);
  }
}
