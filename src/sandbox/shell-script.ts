import { spawn } from 'node:child_process';

/**
 * Runs a logrotate-style script block: `/bin/sh -c SCRIPT logrotate_script ARGS...`, so `$1` is the log path (and for
 * postrotate `$2` the rotated file) as in logrotate. Resolves with the exit code; a script that outlives `timeoutMs`
 * is killed so rotation cannot hang forever.
 */
export function runShellScript(script: string, args: string[], timeoutMs: number): Promise<number | string> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', script, 'logrotate_script', ...args], {
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    child.on('error', (err) => resolve(err.message));
    child.on('close', (code, signal) => resolve(code ?? String(signal)));
  });
}
