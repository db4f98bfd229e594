import { loadConfigFromEnv, standaloneConfig } from '../config/config.js';
import { loadConfig } from '../config/load.js';
import { createDiagnostics } from '../diagnostics.js';
import { openPipeSource } from '../pipe-source.js';
import { onSighup } from './sighup.js';
import { isSessionLeader, pageSize, switchUser } from '../system.js';
import { wireStream } from '../stream/wire-stream.js';
import { flagsExit, switchUserExit, type EarlyExit } from './early-exit.js';
import { parseLoggerFlags } from './flags.js';
import { rawArguments } from './raw-argv.js';

/** Set by the shim (native/shim.c) when the daemon does not serve this stream: why. */
const FALLBACK_REASON_ENV = 'LOG_SPLITTER_FALLBACK_REASON';

/** `mesos-logrotate-logger`: the agent's per-stream helper. Returns the exit code. */
export async function runLogrotateLogger(argv: string[]): Promise<number> {
  const parsed = parseLoggerFlags(argv, pageSize(), rawArguments(argv));
  if (parsed.kind !== 'ok') return printExit(flagsExit(parsed));
  const flags = parsed.flags;
  const log = createDiagnostics({ log_filename: flags.logFilename });
  const fallback = process.env[FALLBACK_REASON_ENV];
  delete process.env[FALLBACK_REASON_ENV];
  if (fallback !== undefined) log.info({ reason: fallback }, 'serving the stream standalone');
  // Last resort: a helper that dies breaks the task's pipe, so a bug that escapes every handler is logged, not fatal.
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception; carrying on'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection; carrying on'));
  if (!isSessionLeader()) log.warn('not a session leader: start the helper through its launcher, which runs setsid');
  if (flags.user !== undefined) {
    try {
      switchUser(flags.user);
    } catch (err) {
      return printExit(switchUserExit(flags.user, err as Error));
    }
  }

  const stream = await wireStream(flags, () => openPipeSource(0), loadConfig(log, (config) => standaloneConfig(config, log)), log);
  // SIGHUP reloads the config; a bad file keeps the last good one.
  onSighup(() => {
    try {
      stream.reload(standaloneConfig(loadConfigFromEnv(), log));
    } catch (err) {
      log.error({ err: (err as Error).message }, 'config reload failed; keeping the running config');
    }
  });
  await stream.run();
  return 0;
}

function printExit(exit: EarlyExit): number {
  process.stdout.write(exit.stdout);
  process.stderr.write(exit.stderr);
  return exit.code;
}
