import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';

/**
 * sh reads the script from fd 3 and evaluates it with fd 3 closed. A script passed as an argument would reach sh as
 * UTF-8, with any other byte turned into U+FFFD; through the pipe it keeps its exact bytes. `$0` is
 * `logrotate_script` and the positional parameters are the args, as for logrotate's `sh -c SCRIPT logrotate_script`.
 * `cat` is looked up on the system's default PATH, whatever the helper's; if it cannot run, the script fails (127).
 */
const EVAL_FD3 = 'eval "$(command -p cat <&3 || echo exit 127)" 3<&-';

/**
 * Runs a logrotate-style script block with `$1` the log path (and for postrotate `$2` the rotated file), as in
 * logrotate. Resolves with the exit code, or the signal or error that ended it. The script runs in a process group
 * of its own: after `timeoutMs`, or when `stop` aborts, the whole group is killed, so nothing the script started (a
 * `sleep`, a pipeline) outlives it. What it leaves running in the background after exiting on its own is left alone,
 * as logrotate leaves it.
 */
export function runShellScript(
  script: Buffer,
  args: string[],
  timeoutMs: number,
  stop?: AbortSignal,
): Promise<number | string> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', EVAL_FD3, 'logrotate_script', ...args], {
      stdio: ['ignore', 'ignore', 'inherit', 'pipe'],
      detached: true,
    });
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    };
    const timer = setTimeout(killGroup, timeoutMs);
    stop?.addEventListener('abort', killGroup);
    const finish = (result: number | string): void => {
      clearTimeout(timer);
      stop?.removeEventListener('abort', killGroup);
      resolve(result);
    };
    child.on('error', (err) => finish(err.message));
    child.on('exit', (code, signal) => finish(code ?? String(signal)));
    const input = child.stdio[3] as Writable | null;
    // sh may be gone before it reads the script (EPIPE): its exit says why.
    input?.on('error', () => undefined);
    input?.end(script);
    if (stop?.aborted === true) killGroup();
  });
}
