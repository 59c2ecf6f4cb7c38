import { writeFileAtomically } from '../fsutil/atomicWrite.js';
import { asset } from '../ui/assets.js';
import type { Snapshot } from '../ui/model.js';
import { THUMB_TYPE, Thumbnails } from '../ui/thumbs.js';

/** Thumbnails made at once while the report is written. */
const THUMB_CONCURRENCY = 4;

/**
 * The HTML report: one file holding the page's own stylesheet and script,
 * the run's final snapshot, and every picture's thumbnail as a data: URI.
 * Its content security policy allows nothing from outside the file, so it
 * opens from disk (or a CI artifact) with no server and no network.
 */
export async function writeHtmlReport(
  path: string,
  snapshot: Snapshot,
  image: (i: number) => string | undefined,
  /** With --chunk: a frame's picture; a chunk's thumbnails are one per frame, keyed `f<frame>`. */
  frameImage?: (frame: number) => string | undefined,
): Promise<void> {
  const thumbs: Record<string, string> = {};
  const cache = new Thumbnails();
  // With --stitch a frame's tiles share its picture: embedded once, with its first finished tile.
  const framesSeen = new Set<number>();
  const wanted = snapshot.tasks.filter((t) => {
    if (!t.image || (t.state !== 'done' && t.state !== 'skipped')) return false;
    if (!snapshot.perFrame) return true;
    if (framesSeen.has(t.frame)) return false;
    framesSeen.add(t.frame);
    return true;
  });
  // A chunk's pictures are its frames'; any other task's is its own.
  const jobs: Array<{ key: string; file: () => string | undefined }> = wanted.flatMap((t) => {
    if (t.count === undefined || t.last === undefined || !frameImage)
      return [{ key: String(t.i), file: () => image(t.i) }];
    const step = t.count > 1 ? (t.last - t.frame) / (t.count - 1) : 0;
    return Array.from({ length: t.count }, (_, k) => t.frame + k * step).map((f) => ({
      key: `f${f}`,
      file: () => frameImage(f),
    }));
  });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      const file = job.file();
      if (file === undefined) continue;
      try {
        thumbs[job.key] = `data:${THUMB_TYPE};base64,${(await cache.get(file, 'small')).toString('base64')}`;
      } catch {
        // Removed or unreadable since: the sheet says "no picture".
      }
    }
  };
  await Promise.all(Array.from({ length: THUMB_CONCURRENCY }, worker));
  const data = JSON.stringify({ snapshot, thumbs }).replace(/</g, '\\u003c');
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>distray: ${escapeHtml(snapshot.title)}</title>
<link rel="icon" href="data:,">
<style>
${asset('page.css')}
</style>
</head>
<body>
<main id="app" data-mode="report"><p>This report needs JavaScript to draw; its data is in the script below.</p></main>
<script type="application/json" id="distray-data">${data}</script>
<script>
${asset('page.js').replace(/<\/script/gi, '<\\/script')}
</script>
</body>
</html>
`;
  await writeFileAtomically(path, html);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}
