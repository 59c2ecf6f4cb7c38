/**
 * Starts real OpenSSH servers on loopback for integration tests: each with its
 * own host key and config, all trusting one client key, and a known_hosts
 * that lists them. Servers are stopped by `stop()`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export const SSHD = '/usr/sbin/sshd';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function keygen(path: string, type = 'ed25519', passphrase = ''): string {
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', passphrase, '-f', path, '-C', 'distray-test']);
  return readFileSync(`${path}.pub`, 'utf8').trim();
}

export interface SshdHost {
  name: string;
  port: number;
  /** "type base64" of its host key. */
  hostKey: string;
  workdir: string;
  log: string;
  process: ChildProcess;
  stop(): Promise<void>;
  /** The host dies: its sshd, every session and every process they started, at once (SIGKILL). */
  crash(): Promise<void>;
  /** Starts its sshd again on the same port with the same host key. */
  restart(): Promise<void>;
}

/** Every descendant of a process (children first found through /proc via pgrep -P). */
export function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    children = execFileSync('pgrep', ['-P', String(pid)])
      .toString()
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
  return children.flatMap((c) => [c, ...descendants(c)]);
}

export interface Farm {
  dir: string;
  user: string;
  clientKey: string;
  knownHosts: string;
  hosts: SshdHost[];
  start(name: string, extraConfig?: string): Promise<SshdHost>;
  /** Writes an inventory file and returns its path. */
  inventory(yaml: string, file?: string): string;
  stop(): Promise<void>;
}

async function waitReady(child: ChildProcess, logPath: string, port: number, fromOffset: number): Promise<void> {
  // Generous: sshd starts in milliseconds, but a loaded machine can take seconds to schedule it.
  const deadline = Date.now() + 60_000;
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `sshd exited early (code ${code}, signal ${signal})`));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${exited}: ${existsSync(logPath) ? readFileSync(logPath, 'utf8') : ''}`);
    if (
      existsSync(logPath) &&
      readFileSync(logPath).subarray(fromOffset).toString().includes(`Server listening on 127.0.0.1 port ${port}`)
    )
      return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`sshd on port ${port} did not start: ${existsSync(logPath) ? readFileSync(logPath, 'utf8') : ''}`);
}

export function startFarm(): Farm {
  const dir = mkdtempSync(join(tmpdir(), 'distray-farm-'));
  mkdirSync('/run/sshd', { recursive: true });
  const clientKey = join(dir, 'client_ed25519');
  const clientPub = keygen(clientKey);
  const authorized = join(dir, 'authorized_keys');
  writeFileSync(authorized, clientPub + '\n');
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, '');
  const hosts: SshdHost[] = [];

  const farm: Farm = {
    dir,
    user: userInfo().username,
    clientKey,
    knownHosts,
    hosts,
    async start(name, extraConfig = '') {
      const hdir = join(dir, name);
      mkdirSync(hdir, { recursive: true });
      const hostKeyPath = join(hdir, 'ssh_host_ed25519_key');
      const pub = keygen(hostKeyPath);
      const hostKey = pub.split(' ').slice(0, 2).join(' ');
      const workdir = join(hdir, 'work');
      mkdirSync(workdir);
      const log = join(hdir, 'sshd.log');
      const config = join(hdir, 'sshd_config');
      const writeConfig = (port: number): void =>
        writeFileSync(
          config,
          [
            // First: sshd keeps the first value it reads, so these override the defaults below.
            extraConfig,
            `Port ${port}`,
            'ListenAddress 127.0.0.1',
            `HostKey ${hostKeyPath}`,
            `PidFile ${join(hdir, 'sshd.pid')}`,
            `AuthorizedKeysFile ${authorized}`,
            'StrictModes no',
            'PermitRootLogin yes',
            'PasswordAuthentication no',
            'KbdInteractiveAuthentication no',
            'UsePAM no',
            'Subsystem sftp internal-sftp',
            'LogLevel DEBUG1',
          ].join('\n') + '\n',
        );
      const launch = async (): Promise<ChildProcess> => {
        const offset = existsSync(log) ? readFileSync(log).length : 0;
        const child = spawn(SSHD, ['-D', '-f', config, '-E', log], { stdio: 'ignore' });
        await waitReady(child, log, port, offset);
        return child;
      };
      // Other test runs on this machine pick free ports too: one may take ours between
      // freePort() and sshd's bind. Then sshd says so and exits, and another port is tried.
      let port = 0;
      let child: ChildProcess | undefined;
      for (let attempt = 1; !child; attempt++) {
        port = await freePort();
        writeConfig(port);
        try {
          child = await launch();
        } catch (err) {
          if (attempt >= 5 || !/Address already in use/.test(String(err))) throw err;
        }
      }
      writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`, { flag: 'a' });
      const exited = (c: ChildProcess): boolean => c.exitCode !== null || c.signalCode !== null;
      const host: SshdHost = {
        name,
        port,
        hostKey,
        workdir,
        log,
        process: child,
        stop: () =>
          new Promise<void>((resolve) => {
            const c = host.process;
            if (exited(c)) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
          }),
        crash: async () => {
          const c = host.process;
          const all = [c.pid!, ...descendants(c.pid!)];
          for (const pid of all) {
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              // Already gone.
            }
          }
          if (!exited(c)) await new Promise((resolve) => c.once('exit', resolve));
        },
        restart: async () => {
          host.process = await launch();
        },
      };
      hosts.push(host);
      return host;
    },
    inventory(yaml, file = 'hosts.yaml') {
      const path = join(dir, file);
      writeFileSync(path, yaml);
      return path;
    },
    async stop() {
      await Promise.all(hosts.map((h) => h.stop()));
      // A host shell may still be ending (its grace for adoption) and remove its run directory meanwhile.
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  };
  return farm;
}

/** An inventory host entry for one of the farm's servers. */
export function hostEntry(farm: Farm, h: SshdHost, extra: Record<string, unknown> = {}): string {
  const fields: Record<string, unknown> = {
    host: '127.0.0.1',
    name: h.name,
    port: h.port,
    workdir: h.workdir,
    ...extra,
  };
  return (
    '  - ' +
    Object.entries(fields)
      .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
      .join('\n    ')
  );
}

export function defaultsBlock(farm: Farm, extra = ''): string {
  return `defaults:\n  user: ${farm.user}\n  identityFile: ${farm.clientKey}\n  knownHosts: ${farm.knownHosts}\n${extra}`;
}
