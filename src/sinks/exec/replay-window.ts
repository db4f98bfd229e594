/**
 * Lines as written to the exec process, with what each stood for in the stream: line i is data[ends[i - 1], ends[i])
 * (its newline included), and it counted as `streamLines[i]` lines (0 for a piece of a cut long line) and
 * `streamBytes[i]` bytes of the stream.
 */
export interface WrittenLines {
  data: Buffer;
  ends: Uint32Array;
  streamLines: Uint8Array;
  streamBytes: Uint32Array;
}

/**
 * The newest lines handed to the exec process, up to `limit` bytes of whole lines. A write completes once the kernel
 * holds the bytes, so when the process dies, whatever sat unread in its stdin socket dies with it; the next process
 * gets this window first, which turns that loss into duplicates (at least once). It knows what its lines counted
 * for, so that a window that can no longer be given again is counted as dropped, not sent.
 */
export class ReplayWindow {
  private chunks: WrittenLines[] = [];
  /** The first line of chunks[0] still held. */
  private from = 0;
  private bytes = 0;
  private lines = 0;
  private stream = 0;

  constructor(private readonly limit: number) {}

  /** Bytes held. */
  get size(): number {
    return this.bytes;
  }

  /** The stream's lines and bytes that what is held stood for. */
  get counted(): { lines: number; bytes: number } {
    return { lines: this.lines, bytes: this.stream };
  }

  /** Takes lines that the process was given. */
  add(written: WrittenLines): void {
    if (this.limit === 0) return;
    this.chunks.push(written);
    this.bytes += written.data.length;
    for (let i = 0; i < written.ends.length; i++) {
      this.lines += written.streamLines[i];
      this.stream += written.streamBytes[i];
    }
    this.trimTo(this.limit);
  }

  /** Gives up the oldest lines until `bytes` are freed (or none is left). */
  release(bytes: number): void {
    this.trimTo(this.bytes - bytes);
  }

  /** Gives up everything. */
  clear(): void {
    this.trimTo(0);
  }

  contents(): Buffer {
    if (this.chunks.length === 0) return Buffer.alloc(0);
    const [first, ...rest] = this.chunks;
    const start = this.from === 0 ? 0 : first.ends[this.from - 1];
    return Buffer.concat([first.data.subarray(start), ...rest.map((chunk) => chunk.data)], this.bytes);
  }

  private trimTo(limit: number): void {
    const keep = Math.max(limit, 0);
    while (this.bytes > keep) {
      const first = this.chunks[0];
      const i = this.from;
      this.bytes -= first.ends[i] - (i === 0 ? 0 : first.ends[i - 1]);
      this.lines -= first.streamLines[i];
      this.stream -= first.streamBytes[i];
      this.from++;
      if (this.from === first.ends.length) {
        this.chunks.shift();
        this.from = 0;
      }
    }
  }
}
