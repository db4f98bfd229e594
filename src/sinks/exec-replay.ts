const NEWLINE = 0x0a;

/**
 * The newest lines handed to the exec process, up to `limit` bytes cut at a line start. A write completes once the
 * kernel holds the bytes, so when the process dies, whatever sat unread in its stdin socket dies with it; the next
 * process gets this window first, which turns that loss into duplicates (at least once).
 */
export class ReplayWindow {
  private chunks: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly limit: number) {}

  /** Bytes held. */
  get size(): number {
    return this.bytes;
  }

  /** Takes newline-terminated lines that the process was given. */
  add(lines: Buffer): void {
    if (this.limit === 0) return;
    this.chunks.push(lines);
    this.bytes += lines.length;
    this.trimTo(this.limit);
  }

  /** Gives up the oldest lines until `bytes` are freed (or none is left). */
  release(bytes: number): void {
    this.trimTo(this.bytes - bytes);
  }

  contents(): Buffer {
    return Buffer.concat(this.chunks, this.bytes);
  }

  private trimTo(limit: number): void {
    const keep = Math.max(limit, 0);
    while (this.bytes > keep) {
      const first = this.chunks[0];
      const excess = this.bytes - keep;
      // Keep whole lines only: cut after the first newline at or past the excess (the chunk ends with one).
      const cut = excess >= first.length ? first.length : first.indexOf(NEWLINE, excess - 1) + 1;
      this.bytes -= cut;
      if (cut === first.length) this.chunks.shift();
      else this.chunks[0] = first.subarray(cut);
    }
  }
}
