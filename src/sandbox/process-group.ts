import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';

/** How a process group's run ended. */
export interface GroupExit {
  /** The leader's exit code, or the signal or spawn error that ended it. */
  result: number | string;
  /** `timeout`: killed at the deadline; `stopped`: killed because the caller's signal aborted. */
  end: 'exited' | 'timeout' | 'stopped';
}

/**
 * Spawns `file` as the leader of a process group of its own. After `timeoutMs`, or when `stop` aborts, the whole
 * group is killed, so nothing the leader started (a `sleep`, a pipeline, a child blocked opening a FIFO) outlives
 * it; only a process that left the group (`setsid`) is out of reach. What the leader leaves running after exiting on
 * its own is left alone.
 */
export function spawnProcessGroup(
  file: string,
  args: string[],
  stdio: StdioOptions,
  timeoutMs: number,
  stop?: AbortSignal,
): { child: ChildProcess; exit: Promise<GroupExit> } {
  const child = spawn(file, args, { stdio, detached: true });
  const exit = new Promise<GroupExit>((resolve) => {
    let killed: GroupExit['end'] = 'exited';
    const killGroup = (reason: GroupExit['end']): void => {
      killed = reason;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    };
    const onStop = (): void => killGroup('stopped');
    const timer = setTimeout(() => killGroup('timeout'), timeoutMs);
    stop?.addEventListener('abort', onStop);
    const finish = (result: number | string): void => {
      clearTimeout(timer);
      stop?.removeEventListener('abort', onStop);
      resolve({ result, end: killed });
    };
    child.on('error', (err) => finish(err.message));
    child.on('exit', (code, signal) => finish(code ?? String(signal)));
    if (stop?.aborted === true) onStop();
  });
  return { child, exit };
}
