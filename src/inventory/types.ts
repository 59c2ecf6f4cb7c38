import type { HostKeyPolicy } from './schema.js';

/** Where a host's SSH session ends up: a host, and how to get there. */
export interface Endpoint {
  host: string;
  port: number;
  user: string;
  identityFiles: string[];
  /** Identity files named in the inventory must exist; ssh_config's and the defaults may not. */
  identityFilesRequired: boolean;
  /** Only the identity files: the agent's other keys could use up the server's MaxAuthTries. */
  identitiesOnly: boolean;
  knownHosts: string;
  hostKeyPolicy: HostKeyPolicy;
  /** Whether DISTRAY_PASSWORD may be offered to it, after its keys failed. */
  password?: boolean | undefined;
  /** The hop before this one (ProxyJump), if any. */
  jump?: Endpoint | undefined;
}

export interface HostConfig extends Endpoint {
  /** Used in logs, reports and %{host}. */
  name: string;
  /** Run on the controller machine itself, without SSH. */
  local: boolean;
  slots: number;
  workdir: string;
  env: Record<string, string>;
  /** How long the login (the user's rc files, up to the host shell's first word) may take. */
  loginTimeoutMs: number;
  /** Where it was written, for messages. */
  source: string;
}
