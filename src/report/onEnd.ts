import { spawn } from 'node:child_process';
import { errorMessage } from '../errors.js';
import { environmentWithoutSecrets } from '../hosts/localSession.js';
import { reportChunks } from './json.js';
import type { RunSummary } from '../fold/types.js';
import { countTasks } from '../fold/taskFold.js';

/** How long --on-end's command may take before it is stopped. */
export const ON_END_TIMEOUT_MS = 60_000;

/** After TERM, how long the command's processes have before KILL. */
const KILL_AFTER_MS = 5_000;

/** What --on-end's command finds in its environment, besides distray's own (less its secrets). */
export function onEndEnv(summary: RunSummary): Record<string, string> {
  // Frames, as every view counts them (a chunk counts its frames; with --tiles, tiles); DISTRAY_TASKS counts the tasks.
  const { frames } = countTasks(summary.tasks);
  return {
    DISTRAY_EXIT_CODE: String(summary.exitCode),
    DISTRAY_DONE: String(frames.done),
    DISTRAY_FAILED: String(frames.failed),
    DISTRAY_SKIPPED: String(frames.skipped),
    DISTRAY_CANCELLED: String(frames.cancelled),
    DISTRAY_FRAMES: String(frames.total),
    DISTRAY_TASKS: String(summary.tasks.length),
  };
}

/**
 * --on-end CMD: the user's own command line, run through the local shell
 * (as a git hook is) once the run has ended, however it ended, with the
 * report's JSON on its stdin. Its output goes to distray's stderr (stdout
 * may be the event stream). It runs in its own process group, so that a
 * command that hangs is stopped whole (TERM, then KILL) after `timeoutMs`.
 * Returns what went wrong with it, or undefined: never throws, since the
 * command's failure must not change the run's outcome.
 */
export function runOnEnd(
  command: string,
  summary: RunSummary,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<string | undefined> {
  const timeoutMs = options.timeoutMs ?? ON_END_TIMEOUT_MS;
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(command, {
        shell: true,
        detached: true,
        stdio: ['pipe', 2, 2],
        // distray's environment less its secrets (DISTRAY_PASSWORD, DISTRAY_KEY_PASSPHRASE): nothing distray starts gets them.
        env: { ...environmentWithoutSecrets(), ...onEndEnv(summary) },
      });
    } catch (err) {
      resolve(`--on-end: cannot start "${command}": ${errorMessage(err)}`);
      return;
    }
    const group = child.pid;
    const killGroup = (signal: NodeJS.Signals): void => {
      if (group === undefined) return;
      try {
        process.kill(-group, signal);
      } catch {
        // Gone already.
      }
    };
    // distray made to exit at once (a second Ctrl+C) takes the command with it.
    const onExit = (): void => killGroup('SIGKILL');
    process.once('exit', onExit);
    let stopped: 'timeout' | 'signal' | undefined;
    let killer: NodeJS.Timeout | undefined;
    const stop = (why: 'timeout' | 'signal'): void => {
      if (stopped) return;
      stopped = why;
      killGroup('SIGTERM');
      killer = setTimeout(() => killGroup('SIGKILL'), KILL_AFTER_MS);
    };
    const timer = setTimeout(() => stop('timeout'), timeoutMs);
    const onAbort = (): void => stop('signal');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      clearTimeout(timer);
      process.off('exit', onExit);
      resolve(`--on-end: cannot start "${command}": ${errorMessage(err)}`);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killer);
      process.off('exit', onExit);
      options.signal?.removeEventListener('abort', onAbort);
      // What it started in the background goes with it, so nothing of it outlives the run.
      if (stopped) killGroup('SIGKILL');
      if (stopped === 'timeout')
        resolve(`--on-end: "${command}" did not end within ${timeoutMs / 1000}s and was stopped`);
      else if (stopped === 'signal') resolve(`--on-end: "${command}" was stopped`);
      else if (signal) resolve(`--on-end: "${command}" was killed by ${signal}`);
      else if (code === 127) resolve(`--on-end: "${command}" exited with status 127 (command not found?)`);
      else if (code !== 0) resolve(`--on-end: "${command}" exited with status ${code}`);
      else resolve(undefined);
    });
    // A command that does not read its stdin (most notifiers) closes it early: not a failure.
    const stdin = child.stdin!;
    stdin.on('error', () => {});
    void (async () => {
      for (const chunk of reportChunks(summary)) {
        if (stdin.destroyed) return;
        if (!stdin.write(chunk)) {
          await new Promise<void>((ok) => {
            stdin.once('drain', ok);
            stdin.once('close', ok);
          });
        }
      }
      stdin.end();
    })();
  });
}
