import type { LineCounters } from '../lines/line-buffer.js';
import {
  LineBuffer,
  type BufferConfig,
  type DropReason,
  type LineOptions,
  type SharedBudget,
} from '../lines/line-buffer.js';
import { LineTally } from '../lines/line-tally.js';
import type { StreamMetadata } from '../mesos/metadata.js';

/** A stream's lines in one sink: what went in, and what became of it. */
export interface LineStats extends LineCounters {
  /** Derived: sent + dropped + buffered, the held lines counted at the time of asking. */
  linesIn: number;
  /** Taken in, neither sent nor dropped (held or in flight). */
  bufferedLines: number;
  bufferedBytes: number;
  /** Lines and bytes dropped, by reason; only reasons that dropped something. */
  droppedBy: Partial<Record<DropReason, { lines: number; bytes: number }>>;
}

/** What a queue needs of the sink it feeds. */
export interface QueueOwner {
  /** New lines are waiting. */
  wake(): void;
  /** The queue is done with: its lines are never taken again. */
  release(queue: StreamQueue): void;
}

/**
 * One stream's lines waiting for one sink: a bounded buffer (LineBuffer) filled without ever blocking the stream,
 * and the stream's own counters. A shared sink drains its streams' queues in turn; the stream only appends and ends.
 */
export class StreamQueue {
  readonly lines: LineBuffer;
  private ended = false;
  private delivered = false;
  private onDelivered: (() => void) | undefined;
  /** Finished past its deadline with lines left: the sink forgets it once they are delivered or dropped. */
  private releaseWhenDelivered = false;

  constructor(
    private readonly owner: QueueOwner,
    limits: BufferConfig,
    options: LineOptions,
    budget: SharedBudget,
    sinkTally: LineTally,
  ) {
    this.lines = new LineBuffer(limits, options, budget, new LineTally(sinkTally));
  }

  /**
   * Takes a chunk of the stream (copied; the caller may reuse it) without blocking. When the sink's buffer is full,
   * `when_full` decides which lines are dropped.
   */
  append(chunk: Buffer, time: number, meta: StreamMetadata): void {
    this.lines.append(chunk, time, meta);
    this.owner.wake();
  }

  /**
   * The queue (re)joins a running stream: the stream went on without it, or it was just added. An unterminated line
   * it holds never ends here and is dropped. `openLine` is the stream's current line so far (it is taken first, so
   * that line arrives whole); undefined when unknown, and then the rest of the current line is skipped.
   */
  rejoin(openLine: Buffer | undefined, time: number, meta: StreamMetadata): void {
    this.lines.dropUnterminated('detached');
    if (openLine === undefined) this.lines.skipToNextLine();
    else if (openLine.length > 0) this.append(openLine, time, meta);
  }

  /** The stream goes on without this queue (a reload removed or replaced its sink): an unterminated line it holds is dropped. */
  detach(): void {
    this.lines.dropUnterminated('detached');
  }

  reconfigureLines(options: LineOptions): void {
    this.lines.reconfigure(options);
  }

  /** No more lines: an unterminated last line is now a line of its own, and the sink delivers what is held. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.lines.end();
    this.owner.wake();
    this.checkDelivered();
  }

  /**
   * Ends the queue, and resolves once every line it took in is sent or dropped, or at `deadline` (ms since the
   * epoch), when the stream's summary counts what is left as buffered. A shared sink outlives its streams: it goes
   * on delivering what is left (within its budget) and forgets the queue once it has.
   */
  async finish(deadline: number): Promise<void> {
    this.end();
    if (!this.delivered) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.onDelivered = resolve;
        timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      });
      clearTimeout(timer);
      this.onDelivered = undefined;
    }
    if (this.delivered) this.owner.release(this);
    else this.releaseWhenDelivered = true;
  }

  /** The sink settled, confirmed or dropped lines of this queue: an ended one may now be done. */
  checkDelivered(): void {
    if (!this.ended || this.delivered || !this.lines.empty) return;
    this.delivered = true;
    this.onDelivered?.();
    if (this.releaseWhenDelivered) this.owner.release(this);
  }

  /** The counters; buffered lines are counted by scanning what is held, once per call. */
  get stats(): LineStats {
    const counters = this.lines.counters;
    const buffered = this.lines.buffered();
    return {
      linesIn: counters.linesSent + counters.linesDropped + buffered.lines,
      ...counters,
      bufferedLines: buffered.lines,
      bufferedBytes: buffered.bytes,
      droppedBy: this.lines.tally.droppedByReason(),
    };
  }

  /** Lines dropped so far (cheap, unlike `stats`). */
  droppedLines(): number {
    return this.lines.counters.linesDropped;
  }

  /** Lines and bytes taken in but neither sent nor dropped: in = sent + dropped + buffered. */
  buffered(): { lines: number; bytes: number } {
    return this.lines.buffered();
  }
}
