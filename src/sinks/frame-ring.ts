interface Frames {
  start: number;
  end: number;
  /** When the kernel took them; undefined while their write is pending. */
  at: number | undefined;
  /** The stream lines and bytes they carry. */
  lines: number;
  bytes: number;
}

/**
 * Where a stream transport's frames are encoded, and the replay window at once: one buffer of `capacity` bytes
 * that each batch is encoded into, after the previous one. The frames written lately stay there until newer ones
 * overwrite them, so keeping them for replay costs neither a copy nor an allocation per batch. (Keeping each
 * batch's own buffer instead left megabytes of dead ones for the GC, and they fragment the malloc heap.)
 *
 * With capacity 0 (replay off) the space is a scratch buffer that nothing is kept in.
 */
export class FrameRing {
  private buffer: Buffer = Buffer.alloc(0);
  private frames: Frames[] = [];
  /** Frames larger than the ring: kept in a buffer of their own while they are the newest. */
  private oversized: Buffer | undefined;
  private next = 0;

  constructor(
    private readonly capacity: number,
    private readonly maxAgeMs: number,
  ) {}

  /**
   * What the replay window holds for good: the ring's buffer. Oversized frames and the scratch buffer of replay off
   * are, like the encoded batch in flight, not counted.
   */
  get windowBytes(): number {
    return this.capacity > 0 ? this.buffer.length : 0;
  }

  /**
   * Space for the next frames, `size` bytes, followed by `scratch` bytes the encoder may use until they are
   * written. Older frames it overlaps, scratch included, leave the window. Until `written`, the frames are not in
   * the window but stay where they are, for their write to be tried again.
   */
  reserve(size: number, scratch = 0): Buffer {
    const span = size + scratch;
    if (this.oversized !== undefined) {
      this.oversized = undefined;
      this.frames = [];
    }
    if (this.capacity === 0) {
      // Replay off: a scratch buffer, grown up to a batch's usual size; a larger batch gets a buffer of its own.
      if (span <= this.buffer.length) return this.buffer.subarray(0, span);
      return span <= MAX_SCRATCH_BYTES ? (this.buffer = Buffer.allocUnsafeSlow(span)) : Buffer.allocUnsafe(span);
    }
    if (span > this.capacity) {
      this.oversized = Buffer.allocUnsafe(span);
      this.frames = [{ start: 0, end: size, at: undefined, lines: 0, bytes: 0 }];
      return this.oversized;
    }
    if (this.buffer.length === 0) this.buffer = Buffer.allocUnsafeSlow(this.capacity);
    const start = this.next + span <= this.capacity ? this.next : 0;
    this.frames = this.frames.filter((frames) => frames.end <= start || frames.start >= start + span);
    this.frames.push({ start, end: start + size, at: undefined, lines: 0, bytes: 0 });
    this.next = start + size;
    return this.buffer.subarray(start, start + span);
  }

  /** The kernel took the reserved frames, which carry `lines` and `bytes` of the stream. */
  written(now: number, lines: number, bytes: number): void {
    const newest = this.frames.at(-1);
    if (newest === undefined || newest.at !== undefined) return;
    newest.at = now;
    newest.lines = lines;
    newest.bytes = bytes;
  }

  /** The kernel took the kept frames again (a replay): their age starts over. */
  rewritten(now: number): void {
    for (const frames of this.frames) if (frames.at !== undefined) frames.at = now;
  }

  /** Forgets frames the kernel took more than maxAgeMs before `now`: they count as received. */
  expire(now: number): void {
    this.frames = this.frames.filter((frames) => frames.at === undefined || frames.at >= now - this.maxAgeMs);
  }

  /** The frames written and still kept, oldest first: what a lost connection may not have delivered. */
  replayable(): Buffer[] {
    const source = this.oversized ?? this.buffer;
    return this.frames.filter((frames) => frames.at !== undefined).map((frames) => source.subarray(frames.start, frames.end));
  }

  /** Forgets the frames written and kept; returns the stream lines and bytes they carried. */
  forget(): { lines: number; bytes: number } {
    const kept = this.frames.filter((frames) => frames.at !== undefined);
    this.frames = this.frames.filter((frames) => frames.at === undefined);
    return kept.reduce((sum, frames) => ({ lines: sum.lines + frames.lines, bytes: sum.bytes + frames.bytes }), { lines: 0, bytes: 0 });
  }
}

/**
 * The largest scratch buffer kept for the next batch when nothing is kept for replay (a batch of 1024 usual lines
 * encodes to ~400 KB, plus its ~110 KB staged).
 */
const MAX_SCRATCH_BYTES = 1 << 20;
