import type { Logger } from '../diagnostics.js';
import { createDiagnostics } from '../diagnostics.js';
import { StreamPipeline } from '../pipeline.js';
import { parseDirectives } from '../sandbox/directives.js';
import { writeLogrotateConf } from '../sandbox/logrotate-conf.js';
import { LogrotateRotation, NativeRotation, type Rotation } from '../sandbox/rotation.js';
import { SandboxWriter } from '../sandbox/writer.js';
import { isSessionLeader, pageSize, switchUser } from '../system.js';
import { parseLoggerFlags, type LoggerFlags } from './flags.js';

/** `mesos-logrotate-logger`: the agent's per-stream helper. Returns the exit code. */
export async function runLogrotateLogger(argv: string[]): Promise<number> {
  const page = pageSize();
  const parsed = parseLoggerFlags(argv, page);
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
  try {
    writeLogrotateConf(flags.logFilename, flags.logrotateOptions, threshold);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'failed to write the logrotate configuration');
  }
  const sandbox = new SandboxWriter({
    path: flags.logFilename,
    maxSize: flags.maxSize,
    rotation: chooseRotation(flags, threshold, log),
    log,
  });
  const stats = await new StreamPipeline({ source: process.stdin, sandbox, log }).run();
  log.info(stats, 'stream ended');
  return 0;
}

/** Native rotation when every directive is understood; otherwise the real logrotate, as the original runs it. */
function chooseRotation(flags: LoggerFlags, threshold: number, log: Logger): Rotation {
  const directives = parseDirectives(flags.logrotateOptions);
  if (directives.kind === 'native') {
    try {
      const rotation = new NativeRotation(flags.logFilename, directives.policy, log);
      log.info({ rotation: 'native', directives: directives.directives }, 'rotating natively');
      return rotation;
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'native rotation unavailable');
    }
  } else {
    log.info({ rotation: 'logrotate', reason: directives.reason, logrotate: flags.logrotatePath }, 'rotating with logrotate');
  }
  return new LogrotateRotation(flags.logFilename, flags.logrotatePath, threshold, log);
}
