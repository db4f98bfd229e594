/** What every OTLP log record of ours carries besides the line, in either encoding. */

/** The InstrumentationScope name of every record. */
export const SCOPE_NAME = 'mesos-log-splitter';

/** OTLP SeverityNumber and SeverityText of a stream: INFO for stdout, ERROR for stderr (as journald and syslog). */
export const SEVERITY = {
  stdout: { number: 9, text: 'INFO' },
  stderr: { number: 17, text: 'ERROR' },
} as const;

/** The record attribute naming the stream (OpenTelemetry semantic conventions). */
export const IOSTREAM_ATTRIBUTE = 'log.iostream';
/** A boolean record attribute, true on a line that did not end with a newline (a cut long line, an idle flush). */
export const PARTIAL_ATTRIBUTE = 'mesos.line.partial';

/**
 * A line's arrival time (ms since the epoch) in nanoseconds, as OTLP's fixed64 time_unix_nano wants it. Beyond 2^53,
 * so a BigInt; at microsecond precision, all a millisecond clock reading has.
 */
export const unixNanos = (ms: number): bigint => BigInt(Math.round(ms * 1000)) * 1000n;
