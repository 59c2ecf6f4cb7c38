import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { RunModel } from '../../../src/ui/model.js';
import { LivePage } from '../../../src/ui/server.js';
import { Thumbnails } from '../../../src/ui/thumbs.js';
import { WAIT_MS, within } from '../../helpers/wait.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function call(url: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** An open event stream: what came so far, and a wait for more. */
function openStream(url: string): {
  text(): string;
  waitFor(pred: (text: string) => boolean, what: string): Promise<void>;
  close(): void;
} {
  let text = '';
  const waiters: Array<() => void> = [];
  const req = request(url, (res) => {
    res.on('data', (c: Buffer) => {
      text += c.toString();
      for (const w of waiters.splice(0)) w();
    });
  });
  req.on('error', () => {});
  req.end();
  return {
    text: () => text,
    async waitFor(pred, what) {
      const more = async (): Promise<void> => {
        while (!pred(text)) await new Promise<void>((resolve) => waiters.push(resolve));
      };
      await within(more(), WAIT_MS, `the event stream to bring ${what}`);
    },
    close: () => req.destroy(),
  };
}

function model(): RunModel {
  return new RunModel({
    title: 'test',
    startedAt: new Date(0),
    origin: 0,
    hosts: [{ name: 'a', slots: 1 }],
    tasks: [0, 1].map((i) => ({ index: i, frame: i, tile: null, label: `frame ${i}`, skipped: false, image: true })),
  });
}

let page: LivePage | undefined;
afterEach(async () => {
  await page?.close();
  page = undefined;
});

describe('LivePage', () => {
  it('refuses every request without its token, and serves the page, its files and its events with it', async () => {
    let stops = 0;
    page = await LivePage.open({ port: 0, host: '127.0.0.1', stop: () => stops++ });
    expect(page.warnings).toEqual([]);
    const url = page.url;
    const origin = new URL(url).origin;
    const token = new URL(url).pathname.split('/')[1]!;
    for (const path of [
      '/',
      '/page.js',
      '/events',
      `/${token.slice(1)}/`,
      `/${token}x/`,
      `/${token.toUpperCase()}/stop`,
    ]) {
      expect((await call(origin + path)).status, path).toBe(403);
    }
    expect((await call(`${origin}/stop`, 'POST')).status).toBe(403);
    expect(stops).toBe(0);

    const html = await call(url);
    expect(html.status).toBe(200);
    expect(html.headers['content-security-policy']).toContain("default-src 'none'");
    expect(html.headers['referrer-policy']).toBe('no-referrer');
    expect(html.body.toString()).toContain('page.js');
    expect((await call(`${url}page.js`)).body.toString()).toContain('EventSource');

    const m = model();
    let retried: number | undefined;
    page.attach(m, {
      image: () => undefined,
      retry: (i) => ((retried = i), i === 1 ? undefined : 'frame 0 is done, not failed'),
    });
    // The snapshot comes first, then what changed.
    const stream = openStream(`${url}events`);
    await stream.waitFor((t) => t.includes('event: snapshot'), 'its snapshot');
    expect(stream.text()).not.toContain('event: delta');
    m.apply({
      type: 'attempt-queued',
      at: 0,
      task: { index: 0, frame: 0, tile: null, label: 'frame 0' },
      attempt: 1,
      host: 'a',
      lane: 0,
      behind: false,
      speculative: false,
    });
    page.flush();
    await stream.waitFor((t) => t.includes('event: delta'), 'a delta');
    const delta = /event: delta\ndata: (.*)\n/.exec(stream.text())![1]!;
    expect(JSON.parse(delta)).toMatchObject({ tasks: [{ i: 0, host: 'a' }] });
    stream.close();

    expect((await call(`${url}retry/1`, 'POST')).status).toBe(202);
    expect(retried).toBe(1);
    const refused = await call(`${url}retry/0`, 'POST');
    expect([refused.status, refused.body.toString()]).toEqual([409, 'frame 0 is done, not failed\n']);
    expect((await call(`${url}stop`, 'POST')).status).toBe(202);
    expect(stops).toBe(1);
    expect((await call(`${url}thumb/0`)).status).toBe(404);
  });

  it('warns when it listens on an address other machines reach', async () => {
    page = await LivePage.open({ port: 0, host: '0.0.0.0', stop: () => {} });
    expect(page.warnings.join()).toContain('--ui-host 0.0.0.0: the page is reachable from other machines');
  });
});

describe('Thumbnails', () => {
  it('fits a picture inside the size without enlarging it, and encodes it once while the file is unchanged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'distray-thumbs-'));
    const big = join(dir, 'big.png');
    const small = join(dir, 'small.png');
    await sharp({ create: { width: 1000, height: 500, channels: 3, background: '#336699' } })
      .png()
      .toFile(big);
    await sharp({ create: { width: 100, height: 80, channels: 3, background: '#996633' } })
      .png()
      .toFile(small);
    const thumbs = new Thumbnails();
    const a = await thumbs.get(big, 'small');
    expect(await sharp(a).metadata()).toMatchObject({ format: 'webp', width: 240, height: 120 });
    expect(await sharp(await thumbs.get(big, 'large')).metadata()).toMatchObject({ width: 960, height: 480 });
    expect(await sharp(await thumbs.get(small, 'small')).metadata()).toMatchObject({ width: 100, height: 80 });
    // The same bytes, not an encode again.
    expect(await thumbs.get(big, 'small')).toBe(a);
    // A file written again is encoded again.
    await sharp({ create: { width: 400, height: 400, channels: 3, background: '#000000' } })
      .png()
      .toFile(join(dir, 'next.png'));
    writeFileSync(big, await sharp(join(dir, 'next.png')).png().toBuffer());
    expect(await sharp(await thumbs.get(big, 'small')).metadata()).toMatchObject({ width: 240, height: 240 });
  });
});
