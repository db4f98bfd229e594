import type { StreamMetadata } from '../mesos/metadata.js';
import type { LogRecord } from './record.js';

export interface LineFramerOptions {
  /** A longer line is cut into records of at most this many bytes, flagged partial. */
  maxLineBytes: number;
  /** An unterminated last line is emitted (flagged partial) after this long without new input. */
  partialFlushMs: number;
}

/**
 * Cuts the byte stream into line records for the sinks. Written here rather than with split2 because split2
 * decodes (it is not byte-faithful), drops or errors on long lines and goes quadratic on them; this keeps zero-copy
 * slices of the incoming chunks and a bounded partial line.
 */
export class LineFramer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private options: LineFramerOptions,
    private meta: () => StreamMetadata,
    private readonly emit: (record: LogRecord) => void,
  ) {}

  push(chunk: Buffer): void {
    const time = Date.now();
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline < 0) break;
      if (this.pendingBytes > 0) {
        this.pending.push(chunk.subarray(start, newline));
        this.pendingBytes += newline - start;
        this.emitPending(false, time);
      } else {
        this.emitLine(chunk.subarray(start, newline), false, time);
      }
      start = newline + 1;
    }
    if (start < chunk.length) {
      this.pending.push(chunk.subarray(start));
      this.pendingBytes += chunk.length - start;
      if (this.pendingBytes > this.options.maxLineBytes) {
        const rest = this.cutLongLine(Buffer.concat(this.pending, this.pendingBytes), time);
        this.pending = [rest];
        this.pendingBytes = rest.length;
      }
    }
    this.armIdleTimer();
  }

  /** New limits apply from the next chunk; a pending partial line is kept. */
  reconfigure(options: LineFramerOptions): void {
    this.options = options;
  }

  /** End of stream: whatever is left is a last line without a newline. */
  end(): void {
    clearTimeout(this.idleTimer);
    if (this.pendingBytes > 0) this.emitPending(true, Date.now());
  }

  private emitPending(partial: boolean, time: number): void {
    const line = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.emitLine(line, partial, time);
  }

  /** Emits the line, first cutting off pieces of maxLineBytes (flagged partial) while it is longer. */
  private emitLine(line: Buffer, partial: boolean, time: number): void {
    const rest = this.cutLongLine(line, time);
    const end = !partial && rest.length > 0 && rest[rest.length - 1] === 0x0d ? rest.length - 1 : rest.length;
    this.emit({ bytes: rest.subarray(0, end), partial, time, meta: this.meta() });
  }

  /** Emits full-size partial pieces from the front of `line`; returns what is left (at most maxLineBytes). */
  private cutLongLine(line: Buffer, time: number): Buffer {
    const max = this.options.maxLineBytes;
    let rest = line;
    while (rest.length > max) {
      // Back off to a character boundary so a multi-byte character is not split between records.
      let cut = max;
      while (cut > max - 3 && (rest[cut] & 0xc0) === 0x80) cut--;
      if ((rest[cut] & 0xc0) === 0x80) cut = max;
      this.emit({ bytes: rest.subarray(0, cut), partial: true, time, meta: this.meta() });
      rest = rest.subarray(cut);
    }
    return rest;
  }

  private armIdleTimer(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.pendingBytes === 0) return;
    this.idleTimer = setTimeout(() => this.emitPending(true, Date.now()), this.options.partialFlushMs);
    this.idleTimer.unref();
  }
}
