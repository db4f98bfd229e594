import type { DropReason, LineCounters } from './line-buffer.js';

/**
 * What happened to a buffer's lines: bytes in, lines and bytes sent and dropped (by reason). A stream queue's tally
 * passes each count on to its sink's, so a shared sink's totals stay exact while streams come and go.
 */
export class LineTally {
  readonly counters: LineCounters = { bytesIn: 0, linesSent: 0, bytesSent: 0, linesDropped: 0, bytesDropped: 0 };
  /** The drops, by reason; their sums are counters.linesDropped and bytesDropped. */
  readonly droppedBy: Record<DropReason, { lines: number; bytes: number }> = {
    buffer_full: { lines: 0, bytes: 0 },
    rejected: { lines: 0, bytes: 0 },
    detached: { lines: 0, bytes: 0 },
    replay_overflow: { lines: 0, bytes: 0 },
  };

  constructor(private readonly parent?: LineTally) {}

  taken(bytes: number): void {
    this.counters.bytesIn += bytes;
    this.parent?.taken(bytes);
  }

  /** Negative counts take back lines counted sent. */
  sent(lines: number, bytes: number): void {
    this.counters.linesSent += lines;
    this.counters.bytesSent += bytes;
    this.parent?.sent(lines, bytes);
  }

  dropped(reason: DropReason, lines: number, bytes: number): void {
    this.counters.linesDropped += lines;
    this.counters.bytesDropped += bytes;
    this.droppedBy[reason].lines += lines;
    this.droppedBy[reason].bytes += bytes;
    this.parent?.dropped(reason, lines, bytes);
  }

  /** Only the reasons that dropped something, copied. */
  droppedByReason(): Partial<Record<DropReason, { lines: number; bytes: number }>> {
    return Object.fromEntries(
      Object.entries(this.droppedBy)
        .filter(([, dropped]) => dropped.bytes > 0 || dropped.lines > 0)
        .map(([reason, dropped]) => [reason, { ...dropped }]),
    );
  }
}
