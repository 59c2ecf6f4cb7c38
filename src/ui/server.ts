import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UsageError, errorMessage } from '../errors.js';
import { asset, ASSET_TYPES, type AssetName } from './assets.js';
import type { RunModel } from './model.js';
import { THUMB_TYPE, Thumbnails, type ThumbSize } from './thumbs.js';

/** What the page may ask of the run. */
export interface RunControl {
  /** The local image to show for task `i` (its stitched frame, or its own image output), if any. */
  image(i: number): string | undefined;
  /** Puts failed task `i` back in the queue; returns why it cannot, or undefined. */
  retry(i: number): string | undefined;
}

export interface LivePageOptions {
  /** 0: any free port. */
  port: number;
  host: string;
  /** The same clean stop as Ctrl+C. */
  stop(): void;
}

/** How often changes are sent to the pages: often enough to look live, rarely enough to cost nothing. */
const FLUSH_MS = 250;
/** A comment line now and then, so proxies and the browser keep the stream open. */
const HEARTBEAT_MS = 15_000;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

const SECURITY_HEADERS = {
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

/**
 * The live page: a small HTTP server (Node's own) on 127.0.0.1 by default.
 * Every path starts with a random token, so only who was given the URL can
 * watch or stop the run; anything else gets 403. The page gets a snapshot
 * of the run model when it connects (server-sent events: the browser
 * reconnects by itself, and gets a fresh snapshot) and deltas after that.
 */
export class LivePage {
  readonly url: string;
  readonly warnings: string[] = [];
  private model: RunModel | undefined;
  private control: RunControl | undefined;
  private readonly streams = new Set<ServerResponse>();
  private readonly thumbs = new Thumbnails();
  private readonly tokenHash: Buffer;
  private flushTimer: ReturnType<typeof setInterval> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;

  private constructor(
    private readonly server: Server,
    private readonly token: string,
    private readonly options: LivePageOptions,
  ) {
    this.tokenHash = digest(token);
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.url = `http://${host}:${address.port}/${token}/`;
    if (!LOOPBACK.has(options.host)) {
      this.warnings.push(
        `--ui-host ${options.host}: the page is reachable from other machines; anyone who learns its URL (with the token) can watch and stop the run, and the connection is not encrypted`,
      );
    }
  }

  /** Listens, or throws a usage error naming the option (a port in use, an address not of this machine). */
  static async open(options: LivePageOptions): Promise<LivePage> {
    const token = randomBytes(24).toString('base64url');
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      const where = `${options.host}:${options.port}`;
      if (code === 'EADDRINUSE')
        throw new UsageError(
          `--ui=${options.port}: port ${options.port} is in use on ${options.host}; choose another port, or give --ui alone for a free one`,
        );
      if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN')
        throw new UsageError(
          `--ui-host ${options.host}: not an address of this machine (${code}); give one of its addresses, or leave --ui-host out for 127.0.0.1`,
        );
      if (code === 'EACCES')
        throw new UsageError(
          `--ui=${options.port}: not allowed to listen on ${where} (ports below 1024 need privileges); choose a port above 1024`,
        );
      throw new UsageError(`--ui: cannot listen on ${where}: ${errorMessage(err)}`);
    });
    const page = new LivePage(server, token, options);
    server.on('request', (req, res) => page.handle(req, res));
    return page;
  }

  /** The run has started: its model feeds the page from now on. */
  attach(model: RunModel, control: RunControl): void {
    this.model = model;
    this.control = control;
    // Pages that connected before the run started get its state now; the changes so far are in it.
    this.model.takeDelta();
    for (const res of this.streams) res.write(snapshotEvent(model));
    this.flushTimer = setInterval(() => this.flush(), FLUSH_MS);
    this.flushTimer.unref();
  }

  /** Sends what changed now (the end of the run, before the process exits). */
  flush(): void {
    const delta = this.model?.takeDelta();
    if (!delta) return;
    const text = `event: delta\ndata: ${JSON.stringify(delta)}\n\n`;
    for (const res of this.streams) res.write(text);
  }

  /** Stops serving: open streams are ended (their pages say the run is over). */
  async close(): Promise<void> {
    this.flush();
    clearInterval(this.flushTimer);
    clearInterval(this.heartbeat);
    for (const res of this.streams) res.end();
    this.streams.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private authorised(segment: string): boolean {
    return timingSafeEqual(digest(segment), this.tokenHash);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    const [, segment = '', ...rest] = path.split('/');
    if (!this.authorised(segment)) {
      send(
        res,
        403,
        'text/plain; charset=utf-8',
        'forbidden: this page needs the URL distray printed when the run started, token included\n',
      );
      return;
    }
    const route = rest.join('/');
    try {
      this.route(req, res, route);
    } catch (err) {
      send(res, 500, 'text/plain; charset=utf-8', `${errorMessage(err)}\n`);
    }
  }

  private route(req: IncomingMessage, res: ServerResponse, route: string): void {
    const method = req.method ?? 'GET';
    if (method === 'GET' && (route === '' || route === 'index.html'))
      return send(res, 200, ASSET_TYPES['page.html'], asset('page.html'));
    if (method === 'GET' && (route === 'page.css' || route === 'page.js'))
      return send(res, 200, ASSET_TYPES[route as AssetName], asset(route));
    if (method === 'GET' && route === 'events') return this.openStream(res);
    const thumb = /^(thumb|picture)\/(\d+)$/.exec(route);
    if (method === 'GET' && thumb)
      return void this.sendThumb(res, Number(thumb[2]), thumb[1] === 'thumb' ? 'small' : 'large');
    if (method === 'POST' && route === 'stop') {
      this.options.stop();
      return send(res, 202, 'text/plain; charset=utf-8', 'stopping\n');
    }
    const retry = /^retry\/(\d+)$/.exec(route);
    if (method === 'POST' && retry) {
      const why = this.control ? this.control.retry(Number(retry[1])) : 'the run has not started yet';
      if (why !== undefined) return send(res, 409, 'text/plain; charset=utf-8', `${why}\n`);
      this.flush();
      return send(res, 202, 'text/plain; charset=utf-8', 'queued again\n');
    }
    if (method !== 'GET' && method !== 'POST')
      return send(res, 405, 'text/plain; charset=utf-8', `${method} is not allowed\n`);
    send(res, 404, 'text/plain; charset=utf-8', `no such page: ${route}\n`);
  }

  private openStream(res: ServerResponse): void {
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': 'text/event-stream; charset=utf-8',
      Connection: 'keep-alive',
    });
    // The browser waits this long before reconnecting to a page that went away.
    res.write('retry: 1000\n\n');
    // The snapshot first, then into the set that gets the deltas after it.
    if (this.model) this.sendSnapshot(res);
    this.streams.add(res);
    res.on('close', () => this.streams.delete(res));
    if (!this.heartbeat) {
      this.heartbeat = setInterval(() => {
        for (const s of this.streams) s.write(': still here\n\n');
      }, HEARTBEAT_MS);
      this.heartbeat.unref();
    }
  }

  private sendSnapshot(res: ServerResponse): void {
    // Changes not yet sent go to the other pages first, so none misses them once this snapshot has them.
    this.flush();
    res.write(snapshotEvent(this.model!));
  }

  private async sendThumb(res: ServerResponse, i: number, size: ThumbSize): Promise<void> {
    const path = this.control?.image(i);
    if (path === undefined) return send(res, 404, 'text/plain; charset=utf-8', `task ${i} has no picture\n`);
    try {
      const data = await this.thumbs.get(path, size);
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'Content-Type': THUMB_TYPE,
        'Content-Length': data.length,
        'Cache-Control': 'private, no-cache',
      });
      res.end(data);
    } catch (err) {
      send(res, 404, 'text/plain; charset=utf-8', `${path}: no picture yet (${errorMessage(err)})\n`);
    }
  }
}

function snapshotEvent(model: RunModel): string {
  return `event: snapshot\ndata: ${JSON.stringify(model.snapshot())}\n\n`;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
