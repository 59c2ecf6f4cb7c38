import { UsageError } from '../errors.js';

/**
 * Remote paths live under the host's workdir: an absolute path or a `..`
 * component could reach outside it (and, for --out, overwrite anything there).
 */
export function checkRemotePath(path: string, what: string): void {
  if (path === '') throw new UsageError(`${what}: the remote path is empty`);
  if (path.startsWith('/') || path.startsWith('~')) {
    throw new UsageError(
      `${what} "${path}": remote paths are relative to the host's workdir; remove the leading "${path[0]}"`,
    );
  }
  if (path.split('/').includes('..')) {
    throw new UsageError(`${what} "${path}": remote paths must not contain ".."; they stay inside the host's workdir`);
  }
  // A copy there would replace or remove the host shell's task records and slot locks.
  if (path.split('/').find((p) => p !== '' && p !== '.') === CONTROL_DIR) {
    throw new UsageError(
      `${what} "${path}": ${CONTROL_DIR}/ in the workdir is distray's own (its running tasks and slot locks); use another name`,
    );
  }
}

/** Where the host shell keeps its state in the workdir (src/hostShell/protocol.ts). */
const CONTROL_DIR = '.distray';

/**
 * Why a copy's path does not name one file or directory, or undefined when
 * it does. A copy makes or replaces exactly the entry it names: `.` would be
 * the workdir (or the local current directory) itself, and a trailing `/`
 * reads as "into this directory", which a copy never does.
 */
export function entryProblem(path: string): string | undefined {
  if (path === '') return 'is empty';
  if (path.endsWith('/')) return 'ends in "/"';
  const last = path.split('/').at(-1);
  if (last === '.' || last === '..') return `ends in "${last}", a directory and not an entry in it`;
  return undefined;
}

/** What to write instead of a path that names no entry: the other side's name, inside the directory it meant. */
export function entrySuggestion(path: string, otherSide: string): string {
  const name =
    otherSide
      .split('/')
      .filter((p) => p !== '' && p !== '.' && p !== '..')
      .at(-1) ?? 'NAME';
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  // "x=x/" most likely meant the entry x itself; "x=dir/" meant dir/x.
  if (parts.at(-1) === name) parts.pop();
  const dir = (path.startsWith('/') ? '/' : '') + parts.join('/');
  return dir === '' || dir === '/' ? `${dir}${name}` : `${dir}/${name}`;
}

/** `SRC[=DEST]`; DEST defaults to SRC. */
export function splitCopySpec(spec: string, option: string): { src: string; dest: string } {
  const eq = spec.indexOf('=');
  const src = eq < 0 ? spec : spec.slice(0, eq);
  let dest = eq < 0 ? spec : spec.slice(eq + 1);
  if (!src || !dest) throw new UsageError(`${option} "${spec}": expected SRC or SRC=DEST`);
  // `--in assets/` (as a shell completes it) means the directory assets, on both sides;
  // only a DEST written out with a trailing "/" is ambiguous ("into it" or "as it").
  // An --out's SRC keeps its "/": it says the output is a directory (see Plan.expandCopy).
  if (eq < 0 && option !== '--out') dest = withoutTrailingSlash(dest);
  return { src, dest };
}

function withoutTrailingSlash(path: string): string {
  return path.replace(/\/+$/, '') || path;
}
