// LOG_SPLITTER_ROOT_SCRIPTS: whether a helper running as root runs the scripts --logrotate_options hold, and logrotate
// on them. A task can set its own options (CONTAINER_LOGGER_LOGROTATE_STDOUT_OPTIONS), so on an agent that runs tasks
// without --user a script block is a command of the task's run as root on the host. `run` keeps the original's
// behaviour (Mesos's own CustomRotateOptions runs a postrotate as root); `refuse` is the operator's opt-in hardening.
import type { Logger } from '../diagnostics.js';
import type { Directives } from './directives.js';

export const ROOT_SCRIPTS_VARIABLE = 'LOG_SPLITTER_ROOT_SCRIPTS';
export type RootScripts = 'run' | 'refuse';

/**
 * The setting in `env`; unset or empty is `run`. Any other value is logged as an error and read as `refuse`: an
 * operator who sets a security variable means to harden, and a typo must not silently leave scripts running as root.
 */
export function rootScriptsSetting(env: NodeJS.ProcessEnv, log: Logger): RootScripts {
  const value = env[ROOT_SCRIPTS_VARIABLE];
  if (value === undefined || value === '' || value === 'run') return 'run';
  if (value === 'refuse') return 'refuse';
  log.error(
    { variable: ROOT_SCRIPTS_VARIABLE, value },
    `invalid ${ROOT_SCRIPTS_VARIABLE}='${value}' (expected 'run' or 'refuse'); refusing scripts as root`,
  );
  return 'refuse';
}

/**
 * Whether scripts and logrotate are refused: under `refuse`, as root. Root logrotate on options the task may have
 * set runs their scripts and `compresscmd` as root, and the options can close the conf's block and open one for any
 * host file (`create 0666` on a crontab): no list of directives makes that safe.
 */
export const refusingAsRoot = (setting: RootScripts): boolean => setting === 'refuse' && process.geteuid!() === 0;

/**
 * The directives to rotate with: when refusingAsRoot, native rotation without script blocks, and in place of the
 * logrotate fallback native rotation with the directives it handles. Logged once, naming what is left out.
 */
export function refusingRootScripts(directives: Directives, setting: RootScripts, log: Logger): Directives {
  if (!refusingAsRoot(setting)) return directives;
  const { policy, directives: names } = directives.kind === 'native' ? directives : directives.understood;
  const ignored = directives.kind === 'native' ? [] : directives.understood.unhandled;
  const hooks = Object.keys(policy.scripts);
  if (hooks.length === 0 && ignored.length === 0) return directives;
  log.warn(
    { [ROOT_SCRIPTS_VARIABLE]: setting, hooks, ignored },
    'the helper runs as root: rotating natively, without these scripts and directives (logrotate would run as root)',
  );
  return { kind: 'native', policy: { ...policy, scripts: {} }, directives: names };
}
