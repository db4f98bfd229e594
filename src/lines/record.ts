import { isUtf8 } from 'node:buffer';
import type { StreamMetadata } from '../mesos/metadata.js';

/** One line of a task's output, as sinks receive it. */
export interface LogRecord {
  /** The line's raw bytes, without its newline (and without a CR before it). Not yet checked for UTF-8. */
  readonly bytes: Buffer;
  /** bytes.length, without making the view. */
  readonly size: number;
  /** True when the record did not end with a newline: a cut long line, or a last line flushed after idle. */
  readonly partial: boolean;
  /** Arrival time, ms since the epoch. */
  readonly time: number;
  /** Who wrote it; replaced for later records when agent enrichment arrives. */
  readonly meta: StreamMetadata;
  /** The bytes are known to be valid UTF-8 (checked once for a whole batch), so utf8Bytes need not check again. */
  readonly validUtf8?: boolean;
}

/** `bytes` as valid UTF-8: themselves when they are (or are `known` to be), else a copy with U+FFFD replacements. */
export function asValidUtf8<T extends Uint8Array>(bytes: T, known: boolean): T | Buffer {
  if (known || isUtf8(bytes)) return bytes;
  return Buffer.from(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
}

/** The line as valid UTF-8 bytes: the raw bytes when they already are, else with U+FFFD replacements. */
export function utf8Bytes(record: LogRecord): Buffer {
  return asValidUtf8(record.bytes, record.validUtf8 === true);
}

/** How many bytes of bytes[start, start + size) fit in `max` without splitting a UTF-8 character. */
export function utf8Prefix(bytes: Uint8Array, start: number, size: number, max: number): number {
  if (max <= 0) return 0;
  if (max >= size) return size;
  let end = max;
  while (end > 0 && (bytes[start + end] & 0xc0) === 0x80) end--;
  return end;
}

/** What a line cut to fit a sink's limit ends with, so whoever reads it sees it was cut (ASCII). */
export const truncationMarker = (kept: number, of: number): string => ` [truncated: ${kept} of ${of} bytes kept]`;

/** A line as a range of the buffer it was cut from; the Buffer view is made only when `bytes` is read. */
export class ChunkLine implements LogRecord {
  constructor(
    private readonly chunk: Buffer,
    private readonly start: number,
    readonly size: number,
    readonly partial: boolean,
    readonly time: number,
    readonly meta: StreamMetadata,
    readonly validUtf8 = false,
  ) {}

  get bytes(): Buffer {
    return this.chunk.subarray(this.start, this.start + this.size);
  }
}
