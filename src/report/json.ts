import { randomBytes } from 'node:crypto';
import { writeFileAtomically } from '../fsutil/atomicWrite.js';
import type { RunSummary } from '../fold/types.js';

const REPORT_BATCH = 1000;

/**
 * The report as JSON text, a piece at a time: one line per task, a batch of
 * lines a piece, so the report of a million tasks never exists as one
 * string (it would be hundreds of MB, near V8's limit on a string's length).
 */
export function* reportChunks(summary: RunSummary): Generator<string> {
  const marker = `distray-tasks-${randomBytes(8).toString('hex')}`;
  const [head, tail] = JSON.stringify({ ...summary, tasks: marker }, null, 2).split(`"${marker}"`) as [string, string];
  yield summary.tasks.length === 0 ? `${head}[]` : `${head}[\n`;
  for (let i = 0; i < summary.tasks.length; i += REPORT_BATCH) {
    const batch = summary.tasks.slice(i, i + REPORT_BATCH).map((t) => `    ${JSON.stringify(t)}`);
    const last = i + REPORT_BATCH >= summary.tasks.length;
    yield batch.join(',\n') + (last ? '\n  ]' : ',\n');
  }
  yield `${tail}\n`;
}

/** Written to a temporary name and renamed, so a reader never sees half a report. */
export async function writeReport(path: string, summary: RunSummary): Promise<void> {
  await writeFileAtomically(path, reportChunks(summary));
}
