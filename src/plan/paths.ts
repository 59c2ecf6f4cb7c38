import { UsageError } from '../errors.js';

/**
 * Remote paths live under the host's workdir: an absolute path or a `..`
 * component could reach outside it (and, for --out, overwrite anything there).
 */
export function checkRemotePath(path: string, what: string): void {
  if (path === '') throw new UsageError(`${what}: the remote path is empty`);
  if (path.startsWith('/') || path.startsWith('~')) {
    throw new UsageError(`${what} "${path}": remote paths are relative to the host's workdir; remove the leading "${path[0]}"`);
  }
  if (path.split('/').includes('..')) {
    throw new UsageError(`${what} "${path}": remote paths must not contain ".."; they stay inside the host's workdir`);
  }
}

/** `SRC[=DEST]`; DEST defaults to SRC. */
export function splitCopySpec(spec: string, option: string): { src: string; dest: string } {
  const eq = spec.indexOf('=');
  const src = eq < 0 ? spec : spec.slice(0, eq);
  const dest = eq < 0 ? spec : spec.slice(eq + 1);
  if (!src || !dest) throw new UsageError(`${option} "${spec}": expected SRC or SRC=DEST`);
  return { src, dest };
}

/** Joins a workdir-relative path to the workdir without doubling slashes. */
export function joinRemote(workdir: string, rel: string): string {
  if (workdir === '' || workdir === '.') return rel;
  return `${workdir.replace(/\/+$/, '')}/${rel}`;
}
