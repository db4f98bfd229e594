// LOG_SPLITTER_ROOT_SCRIPTS: whether a helper running as root runs the commands --logrotate_options name. A task can
// set its own options (CONTAINER_LOGGER_LOGROTATE_STDOUT_OPTIONS), so on an agent that runs tasks without --user a
// script block is a command of the task's run as root on the host. `run` keeps the original's behaviour (Mesos's own
// CustomRotateOptions runs a postrotate as root); `refuse` is the operator's opt-in hardening.
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
 * The directives to rotate with, under `refuse` when the helper runs as root (uid 0): native rotation without its
 * script blocks, and instead of the logrotate fallback, which would run the scripts (or compresscmd) as root, native
 * rotation with the directives it understands. Logged once, naming what is left out.
 */
export function refusingRootScripts(directives: Directives, setting: RootScripts, log: Logger): Directives {
  if (!refusing(setting)) return directives;
  const why = { [ROOT_SCRIPTS_VARIABLE]: setting };
  if (directives.kind === 'logrotate') {
    const { policy, directives: understood, unhandled, commands } = directives.understood;
    if (commands.length === 0) return directives;
    log.warn(
      { ...why, commands, ignored: unhandled },
      'options naming commands are not given to logrotate as root; rotating natively, without them and the ignored',
    );
    return { kind: 'native', policy: { ...policy, scripts: {} }, directives: understood };
  }
  const hooks = Object.keys(directives.policy.scripts);
  if (hooks.length === 0) return directives;
  log.warn({ ...why, hooks }, 'the helper runs as root: these scripts are skipped at every rotation');
  return { ...directives, policy: { ...directives.policy, scripts: {} } };
}

/** Whether logrotate must not run on these options (as parsed): they name commands that it would run as root. */
export function refusesLogrotate(directives: Directives, setting: RootScripts): boolean {
  if (!refusing(setting)) return false;
  if (directives.kind === 'logrotate') return directives.understood.commands.length > 0;
  return Object.keys(directives.policy.scripts).length > 0;
}

const refusing = (setting: RootScripts): boolean => setting === 'refuse' && process.geteuid!() === 0;
