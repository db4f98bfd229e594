const LF = 0x0a;

/**
 * The stream's current unterminated line, up to a limit: what a sink that joins mid-stream (a reload added or
 * changed it, or its match turned true) is given first, so it gets that line whole. Costs a copy of each chunk's
 * tail after its last newline.
 */
export class OpenLine {
  private bytes: Buffer;
  private length = 0;
  /** The line outgrew the limit: a joining sink skips to the next line instead. */
  private overflow = false;

  constructor(private limit: number) {
    this.bytes = Buffer.allocUnsafe(Math.min(limit, 4096));
  }

  track(chunk: Buffer): void {
    const newline = chunk.lastIndexOf(LF);
    if (newline >= 0) {
      this.length = 0;
      this.overflow = false;
    }
    if (this.overflow) return;
    const rest = chunk.length - newline - 1;
    if (this.length + rest > this.limit) {
      this.overflow = true;
      this.length = 0;
      return;
    }
    if (this.length + rest > this.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.limit, Math.max(2 * this.bytes.length, this.length + rest)));
      this.bytes.copy(grown, 0, 0, this.length);
      this.bytes = grown;
    }
    chunk.copy(this.bytes, this.length, newline + 1);
    this.length += rest;
  }

  /** The line so far (a copy; empty at a line start), or undefined when it outgrew the limit. */
  current(): Buffer | undefined {
    return this.overflow ? undefined : Buffer.from(this.bytes.subarray(0, this.length));
  }

  reconfigure(limit: number): void {
    this.limit = limit;
  }
}
