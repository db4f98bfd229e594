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
        this.emitLine(chunk.subarray(start, newline), false, time);
      }
      start = newline + 1;
    }
    if (start < chunk.length) {
      this.pending.push(chunk.subarray(start));
      this.pendingBytes += chunk.length - start;
      // One byte over the limit stays pending: it may be the CR of a CRLF, which sinks do not get.
      if (this.pendingBytes > this.options.maxLineBytes + 1) {
        const rest = this.cutLongLine(Buffer.concat(this.pending, this.pendingBytes), time, 1);
        this.pending = [rest];
        this.pendingBytes = rest.length;
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
    this.emitLine(line, partial, time);
  }

  /** Emits the line, first cutting off pieces of maxLineBytes (flagged partial) while it is longer. */
  private emitLine(line: Buffer, partial: boolean, time: number): void {
    const cr = !partial && line.length > 0 && line[line.length - 1] === 0x0d;
    // Only a CR costs a second view: one Buffer object per line is a good part of framing's cost and garbage.
    const rest = this.cutLongLine(cr ? line.subarray(0, line.length - 1) : line, time, 0);
    this.emit({ bytes: rest, partial, time, meta: this.meta() });
  }

  /** Emits full-size partial pieces from the front of `line`; returns what is left (at most maxLineBytes + slack). */
  private cutLongLine(line: Buffer, time: number, slack: number): Buffer {
    const max = this.options.maxLineBytes;
    let rest = line;
    while (rest.length > max + slack) {
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
    this.idleTimer = setTimeout(() => {
      this.emitPending(true, Date.now());
      this.idleFlushed = true;
    }, this.options.partialFlushMs);
    this.idleTimer.unref();
  }
}
