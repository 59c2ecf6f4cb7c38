/**
 * The live page (--ui) and the HTML report (--html) in headless Chromium
 * (Debian's chromium package, driven by playwright-core: no browser
 * download), against real sshd hosts. Renderers wait for gate files the
 * test creates, so every step waits for an event, never for time.
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, get, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import { defaultsBlock, hostEntry, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';
import { eventually, processesStartingWith, RUN_MS, within } from '../helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const RAY = fileURLToPath(new URL('../../examples/ray.mjs', import.meta.url));
/** Generous for a loaded 2-core machine: a limit for a test that would hang, not a timing claim. */
const WAIT = 150_000;

let farm: Farm;
let hosts: SshdHost[];
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`the browser tests need Debian's chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does)`);
  mkdirSync(ARTIFACTS, { recursive: true });
  farm = startFarm();
  hosts = [await farm.start('u1'), await farm.start('u2')];
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

afterAll(async () => {
  await browser?.close();
  await farm?.stop();
});

/**
 * A renderer that waits for gate/goN, fails with some output when gate/failN
 * exists, and otherwise renders frame N with the example ray tracer. Its
 * path is unique, so the processes left running can be found by it.
 */
function gatedRenderer(cwd: string): { script: string; gate: string; open(...frames: number[]): void } {
  const gate = join(cwd, 'gate');
  mkdirSync(gate);
  const script = join(cwd, `render-${randomBytes(6).toString('hex')}.sh`);
  writeFileSync(
    script,
    [
      'f=$1',
      `while [ ! -e "${gate}/go$f" ]; do sleep 0.1; done`,
      `if [ -e "${gate}/fail$f" ]; then echo "rendering frame $f"; echo "error: the scene has no camera (frame $f)"; exit 3; fi`,
      'mkdir -p out',
      `exec node "${RAY}" "$f" "out/f-$f.png" --res 320x180`,
    ].join('\n') + '\n',
  );
  return { script, gate, open: (...frames) => frames.forEach((f) => writeFileSync(join(gate, `go${f}`), '')) };
}

function workspace(name: string): string {
  const dir = join(farm.dir, name);
  mkdirSync(dir);
  copyFileSync(RAY, join(dir, 'ray.mjs'));
  return dir;
}

function inventory(name: string): string {
  return farm.inventory(
    `${defaultsBlock(farm)}hosts:\n${hosts.map((h) => hostEntry(farm, h, { workdir: join(h.workdir, name) })).join('\n')}\n`,
    `${name}.yaml`,
  );
}

/** Status and body of a GET. */
function fetchRaw(url: string): Promise<{ status: number; body: Buffer; type: string }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks),
          type: String(res.headers['content-type']),
        }),
      );
    }).on('error', reject);
  });
}

function postRaw(url: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Errors the page printed or threw: there must be none. */
function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}

const cell = (frame: number, state: string): string => `#grid [data-i="${frame}"][data-state="${state}"]`;

describe('the live page (--ui)', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('follows the run, shows pictures and failures, retries a failed frame, and stops the run from the page', async () => {
    const cwd = workspace('live');
    const inv = inventory('live');
    const r = gatedRenderer(cwd);
    // Frame 0 renders at once and frame 1 fails (no retries); the others wait for their gates.
    writeFileSync(join(r.gate, 'fail1'), '');
    r.open(0, 1);
    const env = { ...process.env };
    delete env.SSH_AUTH_SOCK;
    const args = [
      'run',
      inv,
      '0,9',
      'sh',
      r.script,
      '%d',
      '--out',
      'out/f-%d.png=anim/f-%d.png',
      '--retries',
      '0',
      '--ui',
      '--plain',
      '--no-speculate',
      '--html',
      'stopped.html',
    ];
    child = spawn(process.execPath, [CLI, ...args], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child!.on('close', resolve));

    expect(await eventually(() => /live page: (http:\S+)/.test(stderr), WAIT), stderr).toBe(true);
    const url = /live page: (http:\S+)/.exec(stderr)![1]!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/[\w-]{32}\/$/);
    const origin = new URL(url).origin;

    // Without the token, or with another, nothing is served: not the page, its events, a picture, nor a stop.
    for (const path of ['/', '/events', '/thumb/0', `/${'x'.repeat(32)}/`, `/${'x'.repeat(32)}/events`]) {
      expect((await fetchRaw(origin + path)).status, path).toBe(403);
    }

    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors = watchConsole(page);
    await page.goto(url);
    await page.waitForSelector('#grid [data-i="9"]', { timeout: WAIT });
    await page.screenshot({ path: join(ARTIFACTS, 'ui-start.png'), fullPage: true });

    // Frame 0 turns done on the page, with its picture; frame 1 fails with its output tail.
    await page.waitForSelector(cell(0, 'done'), { timeout: WAIT });
    await page.waitForSelector(cell(1, 'failed'), { timeout: WAIT });
    await page.waitForSelector('#failures .failure[data-i="1"] pre.tail', { timeout: WAIT });
    expect(await page.textContent('#failures')).toContain('error: the scene has no camera (frame 1)');

    // Nothing happens while the other renderers wait for their gates: the elapsed time moves all the same, without an event.
    const elapsed = (): Promise<string | undefined> =>
      page.$eval('#progress-text', (p) => /(\S+) elapsed/.exec(p.textContent ?? '')?.[1]);
    const before = await elapsed();
    expect(before).toBeDefined();
    await page.waitForFunction(
      (b) => /(\S+) elapsed/.exec(document.querySelector('#progress-text')?.textContent ?? '')?.[1] !== b,
      before,
      { timeout: WAIT },
    );

    // A thumbnail is a decodable image, fitted inside 240 px with the frame's proportions.
    const thumb = await fetchRaw(`${url}thumb/0`);
    expect(thumb.status).toBe(200);
    expect(thumb.type).toBe('image/webp');
    const meta = await sharp(thumb.body).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 240, 135]);
    const stats = await sharp(thumb.body).stats();
    expect(stats.channels[0]!.max).toBeGreaterThan(0);

    // Clicking a done frame shows its picture, decoded by the browser.
    await page.click('#grid [data-i="0"]');
    await page.waitForFunction(
      () => {
        const img = document.querySelector<HTMLImageElement>('#picture');
        return img !== null && !img.hidden && img.complete && img.naturalWidth > 0;
      },
      undefined,
      { timeout: WAIT },
    );
    expect(
      await page.$eval('#picture', (img) => [
        (img as HTMLImageElement).naturalWidth,
        (img as HTMLImageElement).naturalHeight,
      ]),
    ).toEqual([320, 180]);

    // Retry the failed frame from the page: it renders once its cause is gone.
    rmSync(join(r.gate, 'fail1'));
    await page.click('#failures button.retry[data-i="1"]');
    await page.waitForSelector('#confirm[open]', { timeout: WAIT });
    await page.click('#confirm-yes');
    await page.waitForSelector(`${cell(1, 'retrying')}, ${cell(1, 'running')}, ${cell(1, 'done')}`, { timeout: WAIT });
    // Frames 2 to 5 are running or queued behind them; frame 1 is next in the queue.
    r.open(2, 3, 4, 5);
    await page.waitForSelector(cell(1, 'done'), { timeout: WAIT });
    await page.waitForSelector('#grid [data-state="running"]', { timeout: WAIT });
    await page.screenshot({ path: join(ARTIFACTS, 'ui-mid.png'), fullPage: true });
    expect(await page.textContent('#hosts')).toMatch(/u1/);

    // Stop with the keyboard: the button, then the confirmation's second button.
    const running = processesStartingWith(`sh ${r.script}`);
    expect(running.length).toBeGreaterThan(0);
    await page.focus('#stop');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#confirm[open]', { timeout: WAIT });
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('confirm-yes');
    await page.keyboard.press('Enter');
    expect(await within(exited, RUN_MS, 'distray to exit'), stderr).toBe(130);
    expect(stderr).toContain('stopping (asked from the live page)');
    expect(stderr).toContain('distray: frame 1: retried from the live page');
    // Counted done once retried, no longer failed.
    expect(stderr).toMatch(/frame 1 done on u\d .*\[\d+\/10 done, /);
    expect(stderr).not.toMatch(/frame 1 done on .*failed\]/);
    // No renderer is left on any host (both are this machine).
    expect(await eventually(() => processesStartingWith(`sh ${r.script}`).length === 0, WAIT)).toBe(true);
    await page.waitForSelector('#summary', { state: 'visible', timeout: WAIT });
    expect(await page.textContent('#progress-text')).toContain('Ended (exit 130)');
    // The bar shows what is done, not what has ended: a stopped run's stops short.
    const done = await page.$$eval('#grid [data-state="done"]', (c) => c.length);
    expect(
      await page.$eval('#app progress', (p) => [(p as HTMLProgressElement).value, (p as HTMLProgressElement).max]),
    ).toEqual([done, 10]);
    expect(done).toBeLessThan(10);
    // The timeline draws what ran: the renders stopped (one per slot at most, two slots), each with its frame; not those waiting behind them.
    const stopped = await page.$$eval('#timeline .bar.o-cancelled', (bars) =>
      bars.map((b) => [b.getAttribute('data-i'), b.textContent]),
    );
    expect(stopped.length).toBeGreaterThan(0);
    expect(stopped.length).toBeLessThanOrEqual(2);
    for (const [i, text] of stopped) expect(text).toBe(i);
    await page.screenshot({ path: join(ARTIFACTS, 'ui-end.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
    // Done frames are in place, and the HTML report was written for the stopped run too.
    expect(existsSync(join(cwd, 'anim', 'f-0.png')) && existsSync(join(cwd, 'anim', 'f-1.png'))).toBe(true);
    expect(readFileSync(join(cwd, 'stopped.html'), 'utf8')).toContain('"exitCode":130');
  });

  it("with --ui-keep stays up after the run until Ctrl+C, and exits with the run's status", async () => {
    const cwd = workspace('keep');
    const inv = inventory('keep');
    const env = { ...process.env };
    delete env.SSH_AUTH_SOCK;
    const keep = spawn(
      process.execPath,
      [
        CLI,
        'run',
        inv,
        '0,1',
        'node',
        'ray.mjs',
        '%d',
        'f-%d.png',
        '--res',
        '64x36',
        '--in',
        'ray.mjs',
        '--out',
        'f-%d.png',
        '--ui',
        '--ui-keep',
        '--plain',
      ],
      { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    keep.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => keep.on('close', resolve));
    try {
      expect(await eventually(() => stderr.includes('until Ctrl+C'), WAIT), stderr).toBe(true);
      const url = /live page: (http:\S+)/.exec(stderr)![1]!;
      const page = await browser.newPage();
      const errors = watchConsole(page);
      await page.goto(url);
      await page.waitForSelector('#summary', { state: 'visible', timeout: WAIT });
      expect(await page.textContent('#summary')).toContain('2 done');
      expect(await page.$$eval('#grid [data-state="done"]', (c) => c.length)).toBe(2);
      expect((await fetchRaw(`${url}thumb/1`)).status).toBe(200);
      // Once every task has ended nothing can be retried: a rerun of the command does that.
      const retry = await postRaw(`${url}retry/0`);
      expect(retry.status).toBe(409);
      expect(retry.body.toString()).toContain('the run has ended; run the same command again');
      expect((await postRaw(`${new URL(url).origin}/retry/0`)).status).toBe(403);
      expect(errors).toEqual([]);
      await page.close();
      keep.kill('SIGINT');
      expect(await within(exited, RUN_MS, 'distray to exit'), stderr).toBe(0);
    } finally {
      if (keep.exitCode === null) keep.kill('SIGKILL');
    }
  });

  it('refuses a port in use, a port that is not a number, and --ui-keep without --ui, before anything connects', async () => {
    const cwd = workspace('ports');
    const inv = inventory('ports');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      const inUse = await runCli(['run', inv, '1', 'true', `--ui=${port}`], { cwd });
      expect(inUse.code).toBe(2);
      expect(inUse.stderr).toContain(`--ui=${port}: port ${port} is in use on 127.0.0.1`);
    } finally {
      taken.close();
    }
    const bad = await runCli(['run', inv, '1', 'true', '--ui-keep'], { cwd });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--ui-keep only means something with --ui');
    const word = await runCli(['run', inv, '1', 'true', '--ui=eighty'], { cwd });
    expect(word.code).toBe(2);
    expect(word.stderr).toContain('--ui=eighty: expected a port number');
  });
});

describe('the HTML report (--html)', () => {
  it('of a chunked run has a picture of every finished frame in its contact sheet, in frame order', async () => {
    const cwd = workspace('report-chunks');
    const inv = inventory('report-chunks');
    const script =
      'f=$0; while [ "$f" -le "$1" ]; do mkdir -p out; node ray.mjs "$f" "out/f-$f.png" --res 64x36 || exit 1; f=$((f + 1)); done';
    const res = await runCli(
      [
        'run',
        inv,
        '1,6',
        'sh',
        '-c',
        script,
        '%{first}',
        '%{last}',
        '--in',
        'ray.mjs',
        '--chunk',
        '3',
        '--out',
        'out/f-%d.png=anim/f-%d.png',
        '--html',
        'chunks.html',
        '--plain',
      ],
      { cwd },
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/^distray: 6 frames done \(2 chunks\) in /m);
    const page = await browser.newPage();
    const errors = watchConsole(page);
    await page.goto(pathToFileURL(join(cwd, 'chunks.html')).href);
    await page.waitForSelector('#sheet', { timeout: WAIT });
    const sheet = await page.$$eval('#sheet img', (imgs) => imgs.map((i) => (i as HTMLImageElement).alt));
    expect(sheet).toEqual([1, 2, 3, 4, 5, 6].map((f) => `picture of frame ${f}`));
    // The grid counts frames and labels each chunk by its frames, in frame order.
    expect(await page.$$eval('#grid .cell', (cells) => cells.map((c) => c.textContent?.replace(/^\W+/, '')))).toEqual([
      '1-3',
      '4-6',
    ]);
    expect(await page.textContent('#progress-text')).toContain('6/6 frames done');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('of a run with a failure opens from file:// with every picture and the failure, and makes no network request', async () => {
    const cwd = workspace('report');
    const inv = inventory('report');
    const r = gatedRenderer(cwd);
    r.open(0, 1, 2, 3, 4);
    writeFileSync(join(r.gate, 'fail2'), '');
    const res = await runCli(
      [
        'run',
        inv,
        '0,4',
        'sh',
        r.script,
        '%d',
        '--out',
        'out/f-%d.png=anim/f-%d.png',
        '--retries',
        '1',
        '--html',
        'report/run.html',
        '--plain',
      ],
      { cwd },
    );
    expect(res.code, res.stderr).toBe(1);
    const file = join(cwd, 'report', 'run.html');
    expect(existsSync(file)).toBe(true);

    for (const width of [1200, 360]) {
      const page = await browser.newPage({ viewport: { width, height: 900 } });
      const errors = watchConsole(page);
      const requests: string[] = [];
      page.on('request', (q) => requests.push(q.url()));
      await page.goto(pathToFileURL(file).href);
      await page.waitForSelector('#sheet', { timeout: WAIT });
      // Every frame but the failed one has its thumbnail, decoded.
      const sheet = await page.$$eval('#sheet img', (imgs) =>
        imgs.map((i) => [
          (i as HTMLImageElement).alt,
          (i as HTMLImageElement).naturalWidth,
          (i as HTMLImageElement).src.slice(0, 15),
        ]),
      );
      expect(sheet.map(([alt]) => alt)).toEqual([
        'picture of frame 0',
        'picture of frame 1',
        'picture of frame 3',
        'picture of frame 4',
      ]);
      await page.waitForFunction(
        () =>
          [...document.querySelectorAll<HTMLImageElement>('#sheet img')].every(
            (i) => i.complete && i.naturalWidth === 240,
          ),
        undefined,
        { timeout: WAIT },
      );
      expect(sheet.every(([, , src]) => src === 'data:image/webp')).toBe(true);
      // The failure with its output tail, each attempt; the timeline marks the failed attempts.
      const failures = await page.textContent('#failures');
      expect(failures).toContain('error: the scene has no camera (frame 2)');
      expect(await page.$$eval('#failures .failure[data-i="2"]', (f) => f.length)).toBe(2);
      expect(await page.$$eval('#timeline .bar.o-failed', (b) => b.length)).toBe(2);
      expect(
        await page.$$eval('#timeline .tl-row', (rows) => rows.map((r) => r.querySelector('.tl-name')!.textContent)),
      ).toEqual(['u1 slot 1', 'u2 slot 1']);
      expect(await page.textContent('#hosts')).toMatch(/u1[\s\S]*u2/);
      expect(await page.textContent('#progress-text')).toContain('Ended (exit 1)');
      // Nothing fetched but the file itself; the page fits a narrow window.
      expect(requests.filter((u) => !u.startsWith('data:'))).toEqual([pathToFileURL(file).href]);
      expect(
        await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth),
      ).toBe(true);
      await page.screenshot({
        path: join(ARTIFACTS, width > 400 ? 'report.png' : 'report-narrow.png'),
        fullPage: true,
      });
      expect(errors).toEqual([]);
      await page.close();
    }
  });
});
