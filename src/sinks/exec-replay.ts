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

  get empty(): boolean {
    return this.bytes === 0;
  }

  /** Takes newline-terminated lines that the process was given. */
  add(lines: Buffer): void {
    if (this.limit === 0) return;
    this.chunks.push(lines);
    this.bytes += lines.length;
    while (this.bytes > this.limit) {
      const first = this.chunks[0];
      const excess = this.bytes - this.limit;
      // Keep whole lines only: cut after the first newline at or past the excess (the chunk ends with one).
      const cut = excess >= first.length ? first.length : first.indexOf(NEWLINE, excess - 1) + 1;
      this.bytes -= cut;
      if (cut === first.length) this.chunks.shift();
      else this.chunks[0] = first.subarray(cut);
    }
  }

  contents(): Buffer {
    return Buffer.concat(this.chunks, this.bytes);
  }
}
