/** What the rest of distray needs from a host, over SSH or on this machine. */
import type { Abortable } from '../abort.js';
import { TransferError } from '../errors.js';
import type { EntryStat } from '../ssh/sftp.js';
import type { HostShell } from '../hostShell/hostShell.js';

/** sha256: strong, to tell a file is already there; cksum: cheap, to check what was just written. */
export type HashKind = 'sha256' | 'cksum';

/**
 * Why distray will not use a path: it is a symbolic link, or a directory on
 * its way is one, so what it names may be anywhere on the host.
 */
export function linkMessage(path: string, host: string, resolved?: string): string {
  return (
    `${path} on ${host} is a symbolic link or goes through one${resolved ? ` (it leads to ${resolved})` : ''}: ` +
    `distray reads, writes and removes only inside the workdir, never through a link; remove the link there`
  );
}

/** The most readFile reads: what distray's own commands print is a few lines a file. */
export const MAX_WHOLE_READ = 16 * 1024 * 1024;

/** readFile from readTail: the whole file, or an error naming it when it is larger than MAX_WHOLE_READ. */
export async function readWhole(
  session: Pick<HostSession, 'name' | 'readTail'>,
  path: string,
  options?: Abortable,
): Promise<Buffer> {
  const { data, size } = await session.readTail(path, MAX_WHOLE_READ, options);
  if (data.length < size) {
    throw new TransferError(
      `${path} on ${session.name} is ${size} bytes, more than distray reads whole (${MAX_WHOLE_READ}); something on the host wrote to it: look there`,
    );
  }
  return data;
}

/** An entry as lstat sees it: a symbolic link is a 'link', never what it points to. */
export type RemoteStat = EntryStat;

/**
 * One host. Paths are relative to the host's workdir, already checked by
 * the plan; the session joins them to the workdir. Nothing here follows a
 * symbolic link below the workdir: metadata is lstat's, and `checkInside`
 * proves a directory resolves inside the workdir before anything is read
 * there. Removals, directories and files put in place go through the host
 * shell, which checks for links as it acts (see transfer/copies.ts).
 * Every call that waits on the host takes its signal in an options object,
 * last (see abort.ts); aborted, it rejects at once.
 */
export interface HostSession {
  readonly name: string;
  /** Settles (never rejects) when the host's connection is lost. */
  readonly lost: Promise<Error>;
  /** The host shell (a long-lived shell in the workdir that runs the tasks), started on first use and again if it died. */
  shell(options?: Abortable): Promise<HostShell>;
  /** The token of the host shell started last, if any (see HostShell.retire). */
  readonly shellToken: string | undefined;
  /**
   * The last `max` bytes of a file (all of it when smaller) and its whole
   * size: what a host wrote is read at an offset, never whole, so a file it
   * made huge costs no more than `max` (a renderer's log).
   */
  readTail(path: string, max: number, options?: Abortable): Promise<{ data: Buffer; size: number }>;
  /** A small file of distray's own (a command's output), whole; one over MAX_WHOLE_READ is refused. */
  readFile(path: string, options?: Abortable): Promise<Buffer>;
  /** Runs a short command in the workdir through the host shell (lane 0: before the host takes tasks). */
  command(argv: readonly string[], options?: Abortable): Promise<{ code: number; output: string }>;
  /**
   * SHA-256 (hex), or POSIX cksum ("CRC SIZE"), of the regular files among
   * `paths` that exist (not through a link), or undefined if the host cannot.
   */
  hashFiles(
    paths: readonly string[],
    options?: Abortable & { kind?: HashKind | undefined },
  ): Promise<Map<string, string> | undefined>;
  /** lstat: null if nothing is there. */
  stat(path: string, options?: Abortable): Promise<RemoteStat | null>;
  readdir(path: string, options?: Abortable): Promise<Array<{ name: string } & RemoteStat>>;
  /** Fails unless directory `dir` (workdir-relative, existing) resolves to itself inside the workdir: no link on its way. */
  checkInside(dir: string, options?: Abortable): Promise<void>;
  /** Writes a file with the given permission bits (`mode`: an uploaded renderer stays executable); `size` if known. */
  putFile(
    localPath: string,
    path: string,
    options: Abortable & { mode: number; size?: number | undefined },
  ): Promise<void>;
  /**
   * Copies a regular file from the host to `localPath`, created new (it
   * fails if anything, even a link, is there), and returns how many bytes it
   * wrote. The caller has checked it is a regular file.
   */
  fetchFile(path: string, localPath: string, options?: Abortable): Promise<number>;
  /** Removes a file of the host shell's own run directory (removals elsewhere go through the host shell: see removeRemote). */
  unlink(path: string, options?: Abortable): Promise<void>;
  close(): Promise<void>;
}
