/** What the rest of distray needs from a host, over SSH or on this machine. */
import type { HostShell } from './hostShell.js';

/** sha256: strong, to tell a file is already there; cksum: cheap, to check what was just written. */
export type HashKind = 'sha256' | 'cksum';

export interface RemoteStat {
  size: number;
  isDirectory: boolean;
}

/**
 * One host. Paths are relative to the host's workdir, already checked by
 * the plan; the session joins them to the workdir.
 */
export interface HostSession {
  readonly name: string;
  /** Settles (never rejects) when the host's connection is lost. */
  readonly lost: Promise<Error>;
  /** The host shell (a long-lived shell in the workdir that runs the tasks), started on first use and again if it died. */
  shell(): Promise<HostShell>;
  /** The token of the host shell started last, if any (see HostShell.retire). */
  readonly shellToken: string | undefined;
  readFile(path: string): Promise<Buffer>;
  /** Runs a short command in the workdir through the host shell (lane 0: before the host takes tasks). */
  command(argv: readonly string[]): Promise<{ code: number; output: string }>;
  /**
   * SHA-256 (hex), or POSIX cksum ("CRC SIZE"), of the regular files among
   * `paths` that exist, or undefined if the host cannot.
   */
  hashFiles(paths: readonly string[], kind?: HashKind): Promise<Map<string, string> | undefined>;
  stat(path: string): Promise<RemoteStat | null>;
  readdir(path: string): Promise<Array<{ name: string } & RemoteStat>>;
  mkdirp(path: string): Promise<void>;
  /** Writes a file with the given permission bits (an uploaded renderer stays executable). */
  putFile(localPath: string, path: string, mode: number, size?: number): Promise<void>;
  /**
   * Copies a file from the host to `localPath` and returns how many bytes it
   * wrote; with `remove`, the host's copy is removed once it has been read.
   * Fails if fewer bytes arrive than the host's stat said.
   */
  fetchFile(path: string, localPath: string, options?: { remove?: boolean }): Promise<number>;
  /** Renames, replacing `to` if it exists. */
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  close(): Promise<void>;
}
