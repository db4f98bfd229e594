import { execFileSync } from 'node:child_process';

/** The unprivileged user a test's task runs as. */
export const NOBODY = 65534;

/** Runs `script` in the sandbox as the task: uid and gid nobody, no supplementary groups. */
export function asTask(dir: string, script: string, env: NodeJS.ProcessEnv = {}): void {
  execFileSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'sh', '-ec', script], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}
