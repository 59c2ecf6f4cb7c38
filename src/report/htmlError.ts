import { RunModel } from '../ui/model.js';
import { writeHtmlReport } from './html.js';

/** The HTML report of a run that could not go (a usage or inventory error): it says why, like the JSON report. */
export async function writeErrorHtml(path: string, message: string, exitCode: number): Promise<void> {
  const model = new RunModel({
    title: 'a run that could not start',
    startedAt: new Date(),
    origin: 0,
    tasks: [],
    hosts: [],
  });
  model.ended({ exitCode, lines: [message] });
  await writeHtmlReport(path, model.snapshot(), () => undefined);
}
