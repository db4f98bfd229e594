import type { StreamMetadata } from '../mesos/metadata.js';
import { ChunkLine, type LogRecord } from './record.js';

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
  /** The last record was an unterminated line flushed after idle: a newline next only ends it. */
  private idleFlushed = false;
  /** Bytes were skipped mid-line: what precedes the next newline is the tail of a line nobody framed. */
  private midLine = false;

  constructor(
    private options: LineFramerOptions,
    private meta: () => StreamMetadata,
    private readonly emit: (record: LogRecord) => void,
  ) {}

  push(chunk: Buffer): void {
    const time = Date.now();
    let start = this.idleFlushed && chunk[0] === 0x0a ? 1 : 0;
    this.idleFlushed = false;
    if (this.midLine) {
      start = chunk.indexOf(0x0a) + 1;
      if (start === 0) return;
      this.midLine = false;
    }
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline < 0) break;
      if (this.pendingBytes > 0) {
        this.pending.push(chunk.subarray(start, newline));
        this.pendingBytes += newline - start;
        this.emitPending(false, time);
      } else {
        this.emitLine(chunk, start, newline, false, time);
      }
      start = newline + 1;
    }
    if (start < chunk.length) {
      this.pending.push(chunk.subarray(start));
      this.pendingBytes += chunk.length - start;
      // One byte over the limit stays pending: it may be the CR of a CRLF, which sinks do not get.
      if (this.pendingBytes > this.options.maxLineBytes + 1) {
        const all = Buffer.concat(this.pending, this.pendingBytes);
        const rest = this.cutLongLine(all, 0, all.length, time, 1);
        this.pending = [all.subarray(rest)];
        this.pendingBytes = all.length - rest;
      }
    }
    this.armIdleTimer();
  }

  /**
   * Lets a chunk pass unframed (no sink wants lines), at the cost of one byte check. A pending partial line is
   * dropped, and framing resumes at the next line start, so no record is ever the tail of a skipped line.
   */
  skip(chunk: Buffer): void {
    if (this.pendingBytes > 0) {
      clearTimeout(this.idleTimer);
      this.pending = [];
      this.pendingBytes = 0;
    }
    this.idleFlushed = false;
    this.midLine = chunk[chunk.length - 1] !== 0x0a;
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
    this.emitLine(line, 0, line.length, partial, time);
  }

  /** Emits buf[start, end) as a line, first cutting off pieces of maxLineBytes (flagged partial) while it is longer. */
  private emitLine(buf: Buffer, start: number, end: number, partial: boolean, time: number): void {
    if (!partial && end > start && buf[end - 1] === 0x0d) end--;
    const rest = this.cutLongLine(buf, start, end, time, 0);
    this.emit(new ChunkLine(buf, rest, end - rest, partial, time, this.meta()));
  }

  /** Emits full-size partial pieces from the front of buf[start, end); returns where the rest (at most maxLineBytes + slack) starts. */
  private cutLongLine(buf: Buffer, start: number, end: number, time: number, slack: number): number {
    const max = this.options.maxLineBytes;
    while (end - start > max + slack) {
      // Back off to a character boundary so a multi-byte character is not split between records.
      let cut = start + max;
      while (cut > start + max - 3 && (buf[cut] & 0xc0) === 0x80) cut--;
      if ((buf[cut] & 0xc0) === 0x80) cut = start + max;
      this.emit(new ChunkLine(buf, start, cut - start, true, time, this.meta()));
      start = cut;
    }
    return start;
  }

  private armIdleTimer(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.pendingBytes === 0) return;
    this.idleTimer = setTimeout(() => {
      this.emitPending(true, Date.now());
      this.idleFlushed = true;
    }, this.options.partialFlushMs);
    this.idleTimer.unref();
  }
}
