/**
 * Writes of the controller's own files (logs, fetched outputs, reports):
 * when this machine's disk is full or not writable there, that is said as a
 * LocalFault naming the path, never as a host's failure.
 */
import { LocalFault } from '../errors.js';
import { fileErrorReason } from './atomicWrite.js';

/** The system's codes for a local file system that cannot take a write: full, over quota, read-only, refused, failing. */
const LOCAL_FAULT_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EIO']);

/** What was being written, and the option that chooses where (said in the message as the other way out). */
export interface LocalWrite {
  /** "the log", "the output", "the JSON report". */
  what: string;
  /** "--log-dir", "--out": how to send it elsewhere. */
  option?: string | undefined;
}

/** `err` as a LocalFault when it is a write to `path` that this machine refused (disk full, read-only, ...); else undefined. */
export function localFaultOf(err: unknown, path: string, write: LocalWrite): LocalFault | undefined {
  if (err instanceof LocalFault) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== 'string' || !LOCAL_FAULT_CODES.has(code)) return undefined;
  const elsewhere = write.option ? `, or give ${write.option} a place with room` : '';
  return new LocalFault(
    path,
    code,
    `cannot write ${write.what} ${path} on this machine: ${fileErrorReason(err)}; the run stopped and no host was blamed: ` +
      `free space there or make it writable${elsewhere}, then run the same command again (what is done is kept)`,
    { cause: err },
  );
}

/** Runs `work`, a write to the local `path`: a refusal of this machine's (see localFaultOf) comes out as a LocalFault. */
export async function writingLocal<T>(path: string, write: LocalWrite, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw localFaultOf(err, path, write) ?? err;
  }
}
