import { isUtf8 } from 'node:buffer';
import type { StreamMetadata } from '../mesos/metadata.js';

/** One line of a task's output, as sinks receive it. */
export interface LogRecord {
  /** The line's raw bytes, without its newline (and without a CR before it). Not yet checked for UTF-8. */
  readonly bytes: Buffer;
  /** True when the record did not end with a newline: a cut long line, or a last line flushed after idle. */
  readonly partial: boolean;
  /** Arrival time, ms since the epoch. */
  readonly time: number;
  /** Who wrote it; replaced for later records when agent enrichment arrives. */
  readonly meta: StreamMetadata;
}

/** The line as valid UTF-8 bytes: the raw bytes when they already are, else with U+FFFD replacements. */
export function utf8Bytes(record: LogRecord): Buffer {
  return isUtf8(record.bytes) ? record.bytes : Buffer.from(record.bytes.toString('utf8'));
}

/** The line as text (invalid UTF-8 replaced with U+FFFD). */
export function text(record: LogRecord): string {
  return record.bytes.toString('utf8');
}
