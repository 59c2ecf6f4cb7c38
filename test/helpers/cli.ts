import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../bin/distray.cjs', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built CLI as a user would, without the developer's SSH agent or config.
 * The default limit (3 min) is for a loaded machine at a quarter of its speed and
 * below vitest's, so that a run that hangs fails with its own stderr.
 */
export function runCli(
  args: string[],
  opts: { cwd: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<CliResult> {
  const env: Record<string, string> = { ...(process.env as Record<string, string>), ...opts.env };
  delete env.SSH_AUTH_SOCK;
  if (!opts.env?.DISTRAY_KEY_PASSPHRASE) delete env.DISTRAY_KEY_PASSPHRASE;
  if (!opts.env?.DISTRAY_PASSWORD) delete env.DISTRAY_PASSWORD;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`distray ${args.join(' ')} did not finish in time:\n${stderr}`));
    }, opts.timeoutMs ?? 180_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      // A host state change with no move in scheduler/hostStates.ts is a bug, whatever the test looks at.
      if (stderr.includes('distray: internal: host'))
        reject(new Error(`a host made a move it cannot make:\n${stderr}`));
      resolve({ code, stdout, stderr });
    });
  });
}
