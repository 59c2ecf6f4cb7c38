import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on loopback that can go silent: `cut()` stops forwarding in
 * both directions but keeps every socket open, like a network that drops
 * packets without a reset. Only keepalive can notice it.
 */
export interface SilentProxy {
  port: number;
  cut(): void;
  /** Drops every connection at once (a reset), while new ones still get through. */
  reset(): void;
  close(): Promise<void>;
}

export function startProxy(targetPort: number): Promise<SilentProxy> {
  const sockets = new Set<Socket>();
  let silent = false;
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (d: Buffer) => {
      if (!silent) upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (!silent) client.write(d);
    });
    client.on('end', () => !silent && upstream.end());
    upstream.on('end', () => !silent && client.end());
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : 0,
        cut: () => {
          silent = true;
        },
        reset: () => {
          for (const s of sockets) s.resetAndDestroy();
        },
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
