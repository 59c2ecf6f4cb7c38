import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { writeHtmlReport } from '../../../src/report/html.js';
import type { TaskRef } from '../../../src/scheduler/events.js';
import { RunModel } from '../../../src/ui/model.js';
import { attemptEnded, attemptQueued, attemptStarted, taskDone } from '../../helpers/events.js';

describe('writeHtmlReport', () => {
  it('embeds thumbnails and the run, and a renderer printing </script> cannot end the script early', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'distray-html-'));
    const png = join(dir, 'f0.png');
    await sharp({ create: { width: 480, height: 270, channels: 3, background: '#204060' } })
      .png()
      .toFile(png);
    const m = new RunModel({
      title: 'a <b>bold</b> title',
      startedAt: new Date(0),
      origin: 0,
      hosts: [{ name: 'h', slots: 1 }],
      tasks: [0, 1].map((i) => ({ index: i, frame: i, tile: null, label: `frame ${i}`, skipped: false, image: true })),
    });
    const task = (i: number): TaskRef => ({ index: i, frame: i, tile: null, label: `frame ${i}` });
    m.apply(
      attemptQueued({
        at: 0,
        task: task(0),
        attempt: 1,
        host: 'h',
        lane: 0,
        behind: false,
        speculative: false,
      }),
    );
    m.apply(attemptStarted({ at: 0, task: task(0), attempt: 1, host: 'h', lane: 0 }));
    m.apply(
      attemptEnded({
        at: 1000,
        task: task(0),
        attempt: 1,
        host: 'h',
        outcome: 'done',
        ignored: false,
        seconds: 1,
        bytesIn: 0,
        bytesOut: 0,
      }),
    );
    m.apply(
      taskDone({
        at: 1000,
        task: task(0),
        status: 'done',
        host: 'h',
        attempts: 1,
        winner: { host: 'h', attempt: 1 },
        copies: 1,
      }),
    );
    m.apply(
      attemptQueued({
        at: 1000,
        task: task(1),
        attempt: 1,
        host: 'h',
        lane: 0,
        behind: false,
        speculative: false,
      }),
    );
    m.apply(attemptStarted({ at: 1000, task: task(1), attempt: 1, host: 'h', lane: 0 }));
    m.apply(
      attemptEnded({
        at: 2000,
        task: task(1),
        attempt: 1,
        host: 'h',
        outcome: 'failed',
        message: 'exit 1; last output:\n</script><script>alert(1)</script>',
        ignored: false,
      }),
    );
    m.ended({ exitCode: 1, lines: ['1 done, 1 failed'] });
    const file = join(dir, 'out', 'run.html');
    await writeHtmlReport(file, m.snapshot(), (i) => (i === 0 ? png : undefined));
    const html = readFileSync(file, 'utf8');
    expect(readdirSync(join(dir, 'out'))).toEqual(['run.html']);
    // Only the report's own two scripts open; the output's tags stay inside the JSON, escaped.
    expect(html.match(/<script/gi)).toHaveLength(2);
    expect(html).toContain('\\u003c/script>\\u003cscript>alert(1)\\u003c/script>');
    expect(html).toContain('<title>distray: a &lt;b&gt;bold&lt;/b&gt; title</title>');
    const data = JSON.parse(/<script type="application\/json" id="distray-data">(.*?)<\/script>/s.exec(html)![1]!) as {
      thumbs: Record<string, string>;
      snapshot: { failures: Array<{ tail: string }> };
    };
    expect(Object.keys(data.thumbs)).toEqual(['0']);
    const thumb = Buffer.from(data.thumbs['0']!.replace(/^data:image\/webp;base64,/, ''), 'base64');
    expect(await sharp(thumb).metadata()).toMatchObject({ format: 'webp', width: 240, height: 135 });
    expect(data.snapshot.failures[0]!.tail).toBe('</script><script>alert(1)</script>');
    // Nothing from outside: the policy allows data: images and the inline style and script only.
    expect(html).toContain(
      `content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"`,
    );
  });
});
