interface Frames {
  start: number;
  end: number;
  /** The kernel took them on some connection: they are in the window. */
  written: boolean;
  /** Where their last byte lies in what was written on the current connection; undefined until written on it. */
  until: number | undefined;
  /** The peer acknowledged them (they count as sent): they may leave the window. */
  acknowledged: boolean;
  /** When they were acknowledged, for maxAgeMs. */
  at: number;
  /** The stream lines and bytes they carry. */
  lines: number;
  bytes: number;
}

export interface Carried {
  lines: number;
  bytes: number;
}

/**
 * Where a stream transport's frames are encoded, and the replay window at once: one buffer of `capacity` bytes
 * that each batch is encoded into, after the previous one. The frames written lately stay there until newer ones
 * overwrite them, so keeping them for replay costs neither a copy nor an allocation per batch. (Keeping each
 * batch's own buffer instead left megabytes of dead ones for the GC, and they fragment the malloc heap.)
 *
 * Newer frames overwrite only frames the peer acknowledged: while unacknowledged ones are in the way, `reserve`
 * finds no room, and the transport waits for acknowledgements. So the window holds every frame not known to have
 * reached the peer, and as many acknowledged ones (a receiver may still lose what it had not read) as fit.
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

  /** Frames written and not yet acknowledged are in the window. */
  get unacknowledged(): boolean {
    return this.frames.some((frames) => frames.written && !frames.acknowledged);
  }

  /**
   * Space for the next frames, `size` bytes, followed by `scratch` bytes the encoder may use until they are
   * written; undefined while unacknowledged frames are in the way. Acknowledged frames it overlaps, scratch
   * included, leave the window. Until `written`, the frames are not in the window but stay where they are, for their
   * write to be tried again.
   */
  reserve(size: number, scratch = 0): Buffer | undefined {
    const span = size + scratch;
    if (this.capacity === 0) {
      // Replay off: a scratch buffer, grown up to a batch's usual size; a larger batch gets a buffer of its own.
      if (span <= this.buffer.length) return this.buffer.subarray(0, span);
      return span <= MAX_SCRATCH_BYTES ? (this.buffer = Buffer.allocUnsafeSlow(span)) : Buffer.allocUnsafe(span);
    }
    if (this.oversized !== undefined || span > this.capacity) {
      // Oversized frames are kept alone: they and the ring's frames wait for each other's acknowledgement.
      if (this.frames.some((frames) => !frames.acknowledged)) return undefined;
      this.oversized = undefined;
      this.frames = [];
    }
    if (span > this.capacity) {
      this.oversized = Buffer.allocUnsafe(span);
      this.frames = [newFrames(0, size)];
      return this.oversized;
    }
    if (this.buffer.length === 0) this.buffer = Buffer.allocUnsafeSlow(this.capacity);
    const start = this.next + span <= this.capacity ? this.next : 0;
    const overlaps = (frames: Frames): boolean => frames.end > start && frames.start < start + span;
    if (this.frames.some((frames) => overlaps(frames) && !frames.acknowledged)) return undefined;
    this.frames = this.frames.filter((frames) => !overlaps(frames));
    this.frames.push(newFrames(start, start + size));
    this.next = start + size;
    return this.buffer.subarray(start, start + span);
  }

  /**
   * The kernel took the reserved frames, which carry `lines` and `bytes` of the stream, on the current connection,
   * ending at `until` of what was written on it.
   */
  written(until: number, lines: number, bytes: number): void {
    const newest = this.frames.at(-1);
    if (newest === undefined || newest.written) return;
    newest.written = true;
    newest.until = until;
    newest.lines = lines;
    newest.bytes = bytes;
  }

  /**
   * The peer acknowledged what was written on the current connection up to `upTo`: frames written on it that end
   * there or before and were not acknowledged yet are now. Returns the stream lines and bytes they carry.
   */
  acknowledge(upTo: number, now: number): Carried {
    const carried = { lines: 0, bytes: 0 };
    for (const frames of this.frames) {
      if (frames.acknowledged || frames.until === undefined || frames.until > upTo) continue;
      frames.acknowledged = true;
      frames.at = now;
      carried.lines += frames.lines;
      carried.bytes += frames.bytes;
    }
    return carried;
  }

  /** Forgets acknowledged frames older than maxAgeMs at `now`: they count as read by the receiver. */
  expire(now: number): void {
    this.frames = this.frames.filter((frames) => !frames.acknowledged || frames.at >= now - this.maxAgeMs);
  }

  /** The connection was lost: nothing is written on the next one yet. */
  connectionLost(): void {
    for (const frames of this.frames) frames.until = undefined;
  }

  /** The frames in the window, oldest first: what a lost connection may not have delivered. */
  replayable(): Buffer[] {
    const source = this.oversized ?? this.buffer;
    return this.frames.filter((frames) => frames.written).map((frames) => source.subarray(frames.start, frames.end));
  }

  /**
   * The window's frames, to be written again on the current connection from `from` on (a replay): each is placed
   * where it will end there.
   */
  replay(from: number): Buffer[] {
    let until = from;
    for (const frames of this.frames) {
      if (!frames.written) continue;
      until += frames.end - frames.start;
      frames.until = until;
    }
    return this.replayable();
  }

  /** Forgets the frames in the window; returns the stream lines and bytes of those acknowledged and of the rest. */
  forget(): { acknowledged: Carried; unacknowledged: Carried } {
    const acknowledged = { lines: 0, bytes: 0 };
    const unacknowledged = { lines: 0, bytes: 0 };
    for (const frames of this.frames) {
      if (!frames.written) continue;
      const sum = frames.acknowledged ? acknowledged : unacknowledged;
      sum.lines += frames.lines;
      sum.bytes += frames.bytes;
    }
    this.frames = this.frames.filter((frames) => !frames.written);
    return { acknowledged, unacknowledged };
  }
}

const newFrames = (start: number, end: number): Frames => ({
  start,
  end,
  written: false,
  until: undefined,
  acknowledged: false,
  at: 0,
  lines: 0,
  bytes: 0,
});

/**
 * The largest scratch buffer kept for the next batch when nothing is kept for replay (a batch of 1024 usual lines
 * encodes to ~400 KB, plus its ~110 KB staged).
 */
const MAX_SCRATCH_BYTES = 1 << 20;
