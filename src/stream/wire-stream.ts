import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { LoggerFlags } from '../cli/flags.js';
import type { SplitterConfig } from '../config/config.js';
import type { Logger } from '../diagnostics.js';
import { StreamEnrichment } from '../mesos/enrichment.js';
import { metadataFromPath, type StreamMetadata } from '../mesos/metadata.js';
import { StreamPipeline, type SinkReport } from '../pipeline.js';
import { parseDirectives } from '../sandbox/directives.js';
import { writeLogrotateConf } from '../sandbox/logrotate-conf.js';
import { refusingAsRoot, refusingRootScripts, rootScriptsSetting } from '../sandbox/root-scripts.js';
import { LogrotateRotation, NativeRotation, type Rotation } from '../sandbox/rotation.js';
import { SandboxWriter } from '../sandbox/writer.js';
import type { SinkSet } from '../sinks/sink-set.js';
import { pageSize } from '../system.js';

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
