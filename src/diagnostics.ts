import { writeSync } from 'node:fs';
import pino, { type Logger } from 'pino';

export type { Logger };

/** Level for the helper's own JSON diagnostics; the agent strips MESOS_* and LIBPROCESS_* variables. */
export const LOG_LEVEL_ENV = 'LOG_SPLITTER_LOG_LEVEL';

/** The helper's own diagnostics: JSON lines on stderr, which the agent writes into its log. */
export function createDiagnostics(bindings: Record<string, unknown>, env = process.env): Logger {
  const level = env[LOG_LEVEL_ENV] ?? 'info';
  const options = {
    name: 'mesos-log-splitter',
    base: { pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const destination = new StderrLines();
  try {
    return pino({ ...options, level }, destination);
  } catch {
    const log = pino(options, destination);
    log.warn({ [LOG_LEVEL_ENV]: level }, `unknown log level, using info`);
    return log;
  }
}

const EAGAIN_RETRY_MS = 5;
const EAGAIN_GIVE_UP_MS = 100;

/**
 * pino's destination: each line written to stderr (fd 2) at once. Written here rather than with pino.destination
 * (sonic-boom), which throws when a write fails: a line that cannot be written, because the agent's log is on a full
 * disk (ENOSPC) or gone (EPIPE), or a pipe that stays full for 100 ms, is dropped. The helper's diagnostics must
 * never stop it copying the task's output.
 */
export class StderrLines {
  private readonly pause = new Int32Array(new SharedArrayBuffer(4));

  constructor(private readonly fd = 2) {}

  write(line: string): void {
    const bytes = Buffer.from(line);
    const giveUpAt = Date.now() + EAGAIN_GIVE_UP_MS;
    for (let at = 0; at < bytes.length; ) {
      try {
        at += writeSync(this.fd, bytes, at);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() > giveUpAt) return;
        Atomics.wait(this.pause, 0, 0, EAGAIN_RETRY_MS);
      }
    }
  }
}

/**
 * Logs one event kind at most once per interval, with the number of repeats it swallowed.
 * A full disk can fail every write; the agent's log should get a line every few seconds, not thousands.
 */
export class RateLimitedLog {
  private last = -Infinity;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
  ) {}

  error(fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    if (now - this.last < this.intervalMs) {
      this.suppressed++;
      return;
    }
    this.log.error({ ...fields, suppressed: this.suppressed }, message);
    this.last = now;
    this.suppressed = 0;
  }
}
