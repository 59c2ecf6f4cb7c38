import { hostname } from 'node:os';
import { writeFileAtomically } from '../fsutil/atomicWrite.js';
import type { RunSummary, TaskSummary } from '../fold/types.js';
import { countTasks } from '../fold/taskFold.js';

/**
 * XML 1.0 allows tab, newline and carriage return among the control
 * characters, and no others (nor lone surrogates, U+FFFE, U+FFFF): a
 * renderer's output may hold any of them (a progress bar's escapes, a
 * NUL), so they are written as a visible `\xNN` / `\uNNNN` instead.
 */
const NOT_XML =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function visible(c: string): string {
  const n = c.charCodeAt(0);
  return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Text or an attribute value, safe in XML: escaped, and characters XML cannot hold made visible. */
export function xmlText(text: string): string {
  return text.replace(NOT_XML, visible).replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** An attribute value: newlines and tabs as character references, or a parser folds them into spaces. */
function xmlAttr(text: string): string {
  return xmlText(text).replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}

export function taskName(t: TaskSummary): string {
  // With --chunk: "frames 10-18".
  if (t.label !== undefined) return t.label;
  return `frame ${t.frame}${t.tile !== null ? ` tile ${t.tile}` : ''}`;
}

const seconds = (s: number): string => s.toFixed(3);

/** The first line of a failure message: the `message` attribute; the element holds all of it, the renderer's last lines too. */
function firstLine(text: string): string {
  return text.split('\n')[0] ?? '';
}

/** The testcases of a task: one, or with --chunk one per frame (each a chunk's share of its time, the chunk named as a property). */
function testcases(t: TaskSummary, suite: string): string {
  if (t.count === undefined || t.last === undefined || t.count < 2) return testcase(t, suite);
  const step = (t.last - t.frame) / (t.count - 1);
  let out = '';
  for (let k = 0; k < t.count; k++) out += testcase(t, suite, t.frame + k * step);
  return out;
}

function testcase(t: TaskSummary, suite: string, frame?: number): string {
  const name = frame === undefined ? taskName(t) : `frame ${frame}`;
  const time = frame === undefined ? t.seconds : t.seconds / t.count!;
  const open = `    <testcase name="${xmlAttr(name)}" classname="${xmlAttr(suite)}" time="${seconds(time)}">\n`;
  const list = [
    ...(t.host !== null ? [['host', t.host]] : []),
    ...(frame !== undefined ? [['chunk', taskName(t)]] : []),
  ];
  const props =
    list.length > 0
      ? `      <properties>\n${list.map(([k, v]) => `        <property name="${k}" value="${xmlAttr(v!)}"/>\n`).join('')}      </properties>\n`
      : '';
  let body = '';
  switch (t.status) {
    case 'failed': {
      const message = t.error ?? 'failed';
      const type = t.timedOut ? 'timeout' : (t.stage ?? 'render');
      body = `      <failure message="${xmlAttr(firstLine(message))}" type="${type}">${xmlText(message)}${t.log ? `\n(log: ${xmlText(t.log)})` : ''}</failure>\n`;
      break;
    }
    case 'skipped':
      body = '      <skipped message="already complete"/>\n';
      break;
    case 'cancelled':
    case 'pending':
    case 'running':
      body = `      <skipped message="${xmlAttr(`not done: the run was stopped${t.error ? ` (${firstLine(t.error)})` : ''}`)}"/>\n`;
      break;
    case 'done':
      break;
  }
  return `${open}${props}${body}    </testcase>\n`;
}

const BATCH = 1000;

/**
 * The run as JUnit XML, a piece at a time: one testsuite, one testcase per
 * task (with --chunk per frame, the chunk a property; named as messages name it, its time the seconds of its last
 * attempt, its host a property), failures with the renderer's last lines,
 * tasks that were complete already or never done as skipped. A run that
 * could not start (a usage error) is one failed testcase named "distray".
 */
export function* junitChunks(summary: RunSummary, suite = 'distray'): Generator<string> {
  // Frames, as every view counts them: with --chunk a testcase per frame.
  const { frames } = countTasks(summary.tasks);
  const count = (s: TaskSummary['status'][]): number => s.reduce((n, st) => n + frames[st], 0);
  const runErrors = summary.tasks.length === 0 && summary.errors.length > 0 && !summary.ok;
  const tests = frames.total + (runErrors ? 1 : 0);
  const failures = count(['failed']) + (runErrors ? 1 : 0);
  const skipped = count(['skipped', 'cancelled', 'pending', 'running']);
  yield '<?xml version="1.0" encoding="UTF-8"?>\n';
  yield `<testsuites name="distray" tests="${tests}" failures="${failures}" errors="0" skipped="${skipped}" time="${seconds(summary.seconds)}">\n`;
  yield (
    `  <testsuite name="${xmlAttr(suite)}" tests="${tests}" failures="${failures}" errors="0" skipped="${skipped}" ` +
    `time="${seconds(summary.seconds)}" timestamp="${xmlAttr(summary.startedAt)}" hostname="${xmlAttr(hostname())}">\n`
  );
  yield `    <properties>\n      <property name="exitCode" value="${summary.exitCode}"/>\n    </properties>\n`;
  for (let i = 0; i < summary.tasks.length; i += BATCH)
    yield summary.tasks
      .slice(i, i + BATCH)
      .map((t) => testcases(t, suite))
      .join('');
  if (runErrors) {
    const message = summary.errors.join('\n');
    yield `    <testcase name="distray" classname="${xmlAttr(suite)}" time="0.000">\n      <failure message="${xmlAttr(firstLine(message))}" type="run">${xmlText(message)}</failure>\n    </testcase>\n`;
  }
  const others = runErrors ? [] : summary.errors;
  if (others.length > 0) yield `    <system-err>${xmlText(others.join('\n'))}</system-err>\n`;
  yield '  </testsuite>\n</testsuites>\n';
}

/** Written to a temporary name and renamed, like the report. */
export async function writeJunit(path: string, summary: RunSummary): Promise<void> {
  await writeFileAtomically(path, junitChunks(summary));
}
