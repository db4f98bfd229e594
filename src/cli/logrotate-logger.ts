import type { FileHandle } from 'node:fs/promises';
import { DEFAULT_CONFIG, loadConfigFromEnv, type SplitterConfig } from '../config/config.js';
import type { Logger } from '../diagnostics.js';
import { createDiagnostics } from '../diagnostics.js';
import { StreamEnrichment } from '../mesos/enrichment.js';
import { metadataFromPath } from '../mesos/metadata.js';
import { openPipeSource } from '../pipe-source.js';
import { StreamPipeline } from '../pipeline.js';
import { parseDirectives } from '../sandbox/directives.js';
import { writeLogrotateConf } from '../sandbox/logrotate-conf.js';
import { refusingAsRoot, refusingRootScripts, rootScriptsSetting } from '../sandbox/root-scripts.js';
import { LogrotateRotation, NativeRotation, type Rotation } from '../sandbox/rotation.js';
import { SandboxWriter } from '../sandbox/writer.js';
import { onSighup } from './sighup.js';
import { isSessionLeader, pageSize, switchUser } from '../system.js';
import { parseLoggerFlags, type LoggerFlags } from './flags.js';
import { rawArguments } from './raw-argv.js';

/** `mesos-logrotate-logger`: the agent's per-stream helper. Returns the exit code. */
export async function runLogrotateLogger(argv: string[]): Promise<number> {
  const page = pageSize();
  const parsed = parseLoggerFlags(argv, page, rawArguments(argv));
  if (parsed.kind === 'help') {
    process.stdout.write(`${parsed.usage}\n`);
    return 0;
  }
  if (parsed.kind === 'error') {
    process.stderr.write(`${parsed.message}\n\n${parsed.usage}\n`);
    return 1;
  }
  const flags = parsed.flags;
  const log = createDiagnostics({ log_filename: flags.logFilename });
  // Last resort: a helper that dies breaks the task's pipe, so a bug that escapes every handler is logged, not fatal.
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception; carrying on'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection; carrying on'));
  if (!isSessionLeader()) log.warn('not a session leader: start the helper through its launcher, which runs setsid');
  if (flags.user !== undefined) {
    try {
      switchUser(flags.user);
    } catch (err) {
      process.stderr.write(`Failed to switch user for --user='${flags.user}': ${(err as Error).message}\n`);
      return 1;
    }
  }

  const threshold = flags.maxSize - page;
  let conf: FileHandle | undefined;
  try {
    conf = await writeLogrotateConf(flags.logFilename, flags.logrotateOptions, threshold);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'failed to write the logrotate configuration');
  }
  const sandbox = new SandboxWriter({
    path: flags.logFilename,
    maxSize: flags.maxSize,
    rotation: chooseRotation(flags, threshold, conf, log),
    log,
  });
  const config = loadConfig(log);
  const meta = metadataFromPath(flags.logFilename, flags.user);
  const pipeline = new StreamPipeline({ source: openPipeSource(0), sandbox, meta, config, log });
  const enrichment = new StreamEnrichment(meta, log, (enriched) => pipeline.updateMetadata(enriched));
  enrichment.configure(config);
  // SIGHUP reloads the config; a bad file keeps the last good one.
  onSighup(() => {
    try {
      const next = loadConfigFromEnv();
      if (!pipeline.reconfigure(next)) return log.info('the stream has ended; the reload does not apply');
      enrichment.configure(next);
      log.info({ config: next.source ?? 'built-in default', sinks: next.sinks.map((s) => s.name) }, 'config reloaded');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'config reload failed; keeping the running config');
    }
  });
  const summary = await pipeline.run();
  enrichment.close();
  log.info(summary.sandbox, 'stream ended');
  return 0;
}

/** An invalid config never stops the helper: it logs why and keeps the sandbox going alone. */
function loadConfig(log: Logger): SplitterConfig {
  try {
    const config = loadConfigFromEnv();
    if (config.sinks.length > 0) log.info({ config: config.source, sinks: config.sinks.map((s) => s.name) }, 'forwarding');
    return config;
  } catch (err) {
    log.error({ err: (err as Error).message }, 'invalid config; running sandbox-only');
    return DEFAULT_CONFIG;
  }
}

/**
 * Native rotation when every directive is understood; otherwise the real logrotate, as the original runs it, on
 * `conf` (the conf just written, open to read), which native rotation closes.
 */
function chooseRotation(flags: LoggerFlags, threshold: number, conf: FileHandle | undefined, log: Logger): Rotation {
  const rootScripts = rootScriptsSetting(process.env, log);
  const directives = refusingRootScripts(parseDirectives(flags.logrotateOptions), rootScripts, log);
  if (directives.kind === 'native') {
    try {
      const rotation = new NativeRotation(flags.logFilename, directives.policy, log);
      log.info({ rotation: 'native', directives: directives.directives }, 'rotating natively');
      void conf?.close();
      return rotation;
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'native rotation unavailable');
    }
  } else {
    log.info({ rotation: 'logrotate', reason: directives.reason, logrotate: flags.logrotatePath }, 'rotating with logrotate');
  }
  // Under refuse, native rotation may still be unavailable (a `create` owner unknown here): logrotate must not run.
  const refused = refusingAsRoot(rootScripts);
  if (refused) log.error('logrotate would run as root on these options; not rotating');
  return new LogrotateRotation(flags.logFilename, flags.logrotatePath, refused ? undefined : conf, threshold, log);
}
