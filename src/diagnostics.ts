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
  const destination = pino.destination({ dest: 2, sync: true });
  try {
    return pino({ ...options, level }, destination);
  } catch {
    const log = pino(options, destination);
    log.warn({ [LOG_LEVEL_ENV]: level }, `unknown log level, using info`);
    return log;
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
