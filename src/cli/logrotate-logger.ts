import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { DEFAULT_CONFIG, loadConfigFromEnv, type SplitterConfig } from '../config/config.js';
import type { Logger } from '../diagnostics.js';
import { createDiagnostics } from '../diagnostics.js';
import { StreamEnrichment } from '../mesos/enrichment.js';
import { metadataFromPath, type StreamMetadata } from '../mesos/metadata.js';
import { openPipeSource } from '../pipe-source.js';
import { StreamPipeline, type SinkReport } from '../pipeline.js';
import { parseDirectives } from '../sandbox/directives.js';
import { writeLogrotateConf } from '../sandbox/logrotate-conf.js';
import { refusingAsRoot, refusingRootScripts, rootScriptsSetting } from '../sandbox/root-scripts.js';
import { LogrotateRotation, NativeRotation, type Rotation } from '../sandbox/rotation.js';
import { SandboxWriter } from '../sandbox/writer.js';
import type { SinkSet } from '../sinks/sink-set.js';
import { onSighup } from './sighup.js';
import { isSessionLeader, pageSize, switchUser } from '../system.js';
import { flagsExit, switchUserExit, type EarlyExit } from './early-exit.js';
import { parseLoggerFlags, type LoggerFlags } from './flags.js';
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

  const stream = await wireStream(flags, () => openPipeSource(0), loadConfig(log), log);
  // SIGHUP reloads the config; a bad file keeps the last good one.
  onSighup(() => {
    try {
      stream.reload(loadConfigFromEnv());
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

export interface WiredStream {
  /** Resolves when the stream has ended (or was stopped) and everything read is written. */
  run(): Promise<void>;
  reload(config: SplitterConfig): void;
  /** Stops reading, leaving the rest in the pipe for the next reader; run() then finishes as at EOF. */
  stop(): void;
  /** Metadata found by the daemon's shared /state client (wired with `ownEnrichment: false`). */
  updateMetadata(meta: StreamMetadata): void;
  report(): StreamReport;
}

/** A stream's figures for the daemon's status and metrics. */
export interface StreamReport {
  /** ending: the source ended and the sinks are delivering what they hold. */
  state: 'running' | 'ending';
  bytesIn: number;
  rotations: number;
  sinks: SinkReport[];
}

/**
 * One stream: sandbox files, rotation, sinks and agent enrichment. The helper and the daemon's workers serve each
 * stream with it. The pipe is opened once the stream is ready to read it (a pipe source reads from the start), and
 * run() must follow without an await.
 */
export async function wireStream(
  flags: LoggerFlags,
  openSource: () => Readable,
  config: SplitterConfig,
  log: Logger,
  options: {
    /** False in a daemon worker: the daemon asks the agent for all its streams and sends updateMetadata. */
    ownEnrichment?: boolean;
    /** Bytes read ahead of the sandbox before reading pauses (SandboxWriter's default unless given). */
    sandboxHighWaterMark?: number;
    /** The process's shared sinks (a daemon worker); without, the stream runs its own. */
    outputs?: SinkSet;
  } = {},
): Promise<WiredStream> {
  const { ownEnrichment = true, sandboxHighWaterMark, outputs } = options;
  const threshold = flags.maxSize - pageSize();
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
    highWaterMark: sandboxHighWaterMark,
  });
  const meta = metadataFromPath(flags.logFilename, flags.user);
  const pipeline = new StreamPipeline({ source: openSource(), sandbox, meta, config, log, outputs });
  const enrichment = new StreamEnrichment(meta, log, (enriched) => pipeline.updateMetadata(enriched));
  if (ownEnrichment) enrichment.configure(config.agent, config.sinks.length > 0);
  return {
    async run() {
      const summary = await pipeline.run();
      enrichment.close();
      log.info(summary.sandbox, 'stream ended');
    },
    reload(next) {
      if (!pipeline.reconfigure(next)) return log.info('the stream has ended; the reload does not apply');
      if (ownEnrichment) enrichment.configure(next.agent, next.sinks.length > 0);
      log.info({ config: next.source ?? 'built-in default', sinks: next.sinks.map((s) => s.name) }, 'config reloaded');
    },
    stop: () => pipeline.stopReading(),
    updateMetadata: (next) => pipeline.updateMetadata(next),
    report: () => ({
      state: pipeline.ended ? 'ending' : 'running',
      bytesIn: sandbox.stats.bytesIn,
      rotations: sandbox.stats.rotations,
      sinks: pipeline.sinkReports(),
    }),
  };
}

/** An invalid config never stops the helper: it logs why and keeps the sandbox going alone. */
export function loadConfig(log: Logger): SplitterConfig {
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
  if (refusingAsRoot(rootScripts)) {
    log.error('logrotate would run as root on these options; not rotating');
    void conf?.close();
    return new LogrotateRotation(flags.logFilename, flags.logrotatePath, undefined, threshold, log);
  }
  return new LogrotateRotation(flags.logFilename, flags.logrotatePath, conf, threshold, log);
}
