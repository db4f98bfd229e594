import type { StreamMetadata } from '../mesos/metadata.js';
import type { BatchBuilder } from './batch-builder.js';
import { LineTally } from './line-tally.js';
import { copyCountingNewlines, countNewlines } from './newline-count.js';

export interface LineOptions {
  /** A longer line is cut into records of at most this many bytes, flagged partial. */
  maxLineBytes: number;
  /** An unterminated last line is sent (flagged partial) after this long without new input. */
  partialFlushMs: number;
}

export type WhenFull = 'drop_oldest' | 'drop_newest';

/**
 * buffer_full: `when_full` applied. detached: the sink left or joined the stream mid-line, so a line start it held
 * can never end, or the rest of a line it never saw start is not its to send. replay_overflow: lines counted sent
 * that a lost connection may not have delivered, and that the sink can no longer send again. rejected: the peer
 * refused the batch for good (a 4xx other than 429), so it is not retried.
 */
export type DropReason = 'buffer_full' | 'detached' | 'replay_overflow' | 'rejected';

export interface BufferConfig {
  /**
   * What a sink may hold: stream bytes, CHUNK_ENTRY_BYTES per arrival, and what is pinned (see pinned()). Beyond it,
   * `when_full` applies.
   */
  maxBytes: number;
  whenFull: WhenFull;
}

/**
 * The rest of the budget a buffer shares with others: the queues of a sink's other streams and what the sink itself
 * holds (its reused batch memory, a replay window).
 */
export interface SharedBudget {
  /** What is held against max_bytes outside this buffer. */
  heldOutside(buffer: LineBuffer): number;
  /** An arrival needs `bytes` more room than there is: the others give up what they can before `when_full` applies here. */
  makeRoom(buffer: LineBuffer, bytes: number): void;
}

/** What one take() moved out of the buffer: settle() it once delivered. */
export interface Taken {
  lines: number;
  bytes: number;
  /** The bytes are in a batch's own memory (not reused memory): they count against max_bytes until settled. */
  own: boolean;
}

export interface LineCounters {
  bytesIn: number;
  linesSent: number;
  bytesSent: number;
  linesDropped: number;
  bytesDropped: number;
}

/** What remembering one arrival (its time and metadata) costs, counted against max_bytes with the bytes. */
export const CHUNK_ENTRY_BYTES = 32;

const SEGMENT_SHIFT = 15;
const SEGMENT_BYTES = 1 << SEGMENT_SHIFT;
const SEGMENT_MASK = SEGMENT_BYTES - 1;
/** Segments kept for reuse once the buffer runs empty; the rest go back to the GC, so memory follows what is held. */
const SPARE_SEGMENTS = 2;
/** An arrival entry grows to at most this many bytes: drop_oldest counts within one (see newlinesBefore). */
const ENTRY_MAX_BYTES = 64 * 1024;
const LF = 0x0a;
const CR = 0x0d;

/**
 * One stream's buffer in one sink (a StreamQueue's): the stream's raw bytes, copied in as they arrive and cut into
 * line records only when the sink takes a batch. Holding bytes instead of one object per line is what lets a stalled sink cost the sandbox path
 * little more than a memcpy: drop_oldest evicts whole lines by moving a position.
 *
 * Lines are counted by their newlines, so `linesIn = linesSent + linesDropped + buffered().lines` holds for any
 * mix of cut long lines, idle flushes and drops; bytes are stream bytes, newlines included. Newlines are counted
 * as bytes arrive, in the pass that copies them in, and kept as a running total at each arrival's end, so
 * drop_oldest reads back at most half an arrival of what it evicts. Counting all it evicted, 8 MiB after writing
 * it, read it back from memory: 18 ms per 256 MiB of a stalled helper's main thread, against 4 ms now.
 *
 * Bytes live in fixed segments allocated as the buffer fills, so memory follows what is held, not max_bytes.
 * Positions are absolute stream offsets of this buffer: [head, tail) is held; segment i starts at base + i*SEGMENT.
 */
export class LineBuffer {
  private segments: Buffer[] = [];
  private readonly spare: Buffer[] = [];
  private base = 0;
  private head = 0;
  private tail = 0;
  /** Just past the last newline held; no newline lies in [lineEnd, tail). */
  private lineEnd = 0;
  /**
   * Arrivals: entry k covers bytes before ends[k], which came at times[k] from the writer metas[k]; newlines[k] is
   * the running total of newlines appended up to ends[k].
   */
  private ends: number[] = [];
  private newlines: number[] = [];
  private times: number[] = [];
  private metas: StreamMetadata[] = [];
  private first = 0;
  private lastArrival = 0;
  /** Running totals of newlines: appended (up to tail) and passed by head (taken or evicted). */
  private newlinesIn = 0;
  private newlinesPassed = 0;
  /** Taken and not yet settled. */
  private outstandingBytes = 0;
  /** Of those, the bytes of batches in their own memory rather than a reused one. */
  private outstandingOwnBytes = 0;
  private outstandingLines = 0;
  /** Settled, but not counted sent until the sink confirms them (the peer acknowledged them): still buffered. */
  private unconfirmedLines = 0;
  private unconfirmedBytes = 0;
  /** Handed to the sink's disk spool: buffered, but nothing this buffer still has to do. */
  private spooledLines = 0;
  private spooledBytes = 0;
  /** The last record was an unterminated line flushed after idle: a newline next only ends it. */
  private owedNewline = false;
  /** The start of the current line was dropped (drop_newest): drop up to its newline. */
  private droppingLine = false;
  /** This buffer joined the stream mid-line: bytes up to the next newline are not its to take. */
  private unseenLine = false;
  private ended = false;
  // Lines cut by the take() in progress: where they start and stop (from head), and whether they are partial.
  private starts = new Uint32Array(64);
  private stops = new Uint32Array(64);
  private partials = new Uint8Array(64);
  private records = 0;

  constructor(
    private readonly limits: BufferConfig,
    private options: LineOptions,
    /** Without one, the buffer has max_bytes to itself. */
    private readonly budget?: SharedBudget,
    readonly tally = new LineTally(),
  ) {}

  get counters(): Readonly<LineCounters> {
    return this.tally.counters;
  }

  get droppedBy(): Readonly<Record<DropReason, { lines: number; bytes: number }>> {
    return this.tally.droppedBy;
  }

  /** Copies a chunk in, never blocking. When it does not fit, `when_full` decides what is dropped. */
  append(chunk: Buffer, time: number, meta: StreamMetadata): void {
    this.tally.taken(chunk.length);
    let start = 0;
    if (this.unseenLine) {
      // The rest of a line that started before this buffer joined: taken in and dropped, its newline with it.
      start = chunk.indexOf(LF) + 1;
      this.drop('detached', start === 0 ? 0 : 1, start === 0 ? chunk.length : start);
      if (start === 0) return;
      this.unseenLine = false;
    }
    if (this.droppingLine) {
      const newline = chunk.indexOf(LF, start);
      const end = newline < 0 ? chunk.length : newline + 1;
      this.drop('buffer_full', newline < 0 ? 0 : 1, end - start);
      if (newline < 0) return;
      this.droppingLine = false;
      start = end;
    }
    if (start === chunk.length) return;
    let room = this.room();
    if (chunk.length - start > room && this.budget !== undefined) {
      this.budget.makeRoom(this, chunk.length - start - room);
      room = this.room();
    }
    if (chunk.length - start <= room) return this.copyIn(chunk, start, chunk.length, time, meta);
    if (this.limits.whenFull === 'drop_newest') return this.dropNewest(chunk, start, room, time, meta);
    this.dropOldest(chunk, start, time, meta);
  }

  /**
   * The stream is mid-line and this buffer has not seen the line's start: bytes up to the next newline are not
   * taken, and count as dropped (detached), with the line they end.
   */
  skipToNextLine(): void {
    this.unseenLine = true;
  }

  /** Drops the held start of an unterminated line (its rest is being dropped or will never come here). */
  dropUnterminated(reason: DropReason): void {
    const lineStart = Math.max(this.head, this.lineEnd);
    this.drop(reason, 0, this.tail - lineStart);
    this.retractTail(lineStart);
    this.owedNewline = false;
    this.droppingLine = false;
  }

  /** End of stream: an unterminated last line is now a line of its own. */
  end(): void {
    this.ended = true;
    // The last line's start was dropped (drop_newest) and no newline came: it was a line, and it was dropped.
    if (this.droppingLine) {
      this.droppingLine = false;
      this.drop('buffer_full', 1, 0);
    }
    // The stream ended inside the line this buffer joined in the middle of: that line was dropped here.
    if (this.unseenLine) {
      this.unseenLine = false;
      this.drop('detached', 1, 0);
    }
    // An idle-flushed line that no newline followed was the last line.
    if (this.owedNewline && this.head === this.tail) {
      this.owedNewline = false;
      this.tally.sent(1, 0);
    }
  }

  reconfigure(options: LineOptions): void {
    this.options = options;
  }

  /**
   * Cuts up to `maxLines` records and about `maxBytes` from the front into `into`: whole lines, full-size pieces of
   * long lines, and an unterminated line once it has been idle for partial_flush_ms (or at end of stream).
   */
  take(into: BatchBuilder, maxLines: number, maxBytes: number, now: number): Taken | undefined {
    if (this.owedNewline && this.head < this.tail) {
      this.owedNewline = false;
      if (this.byteAt(this.head) === LF) {
        this.tally.sent(1, 1);
        this.advanceHead(this.head + 1, 1);
      }
    }
    this.records = 0;
    let pos = this.head;
    let lines = 0;
    const maxLine = this.options.maxLineBytes;
    while (this.records < maxLines && pos - this.head < maxBytes && pos < this.lineEnd) {
      const newline = this.findNewline(pos);
      let stop = newline;
      if (stop > pos && this.byteAt(stop - 1) === CR) stop--;
      if (stop - pos > maxLine) pos = this.cutPieces(pos, stop, 0, maxLines);
      if (this.records === maxLines) break;
      this.push(pos, stop, 0);
      pos = newline + 1;
      lines++;
    }
    const newlines = lines;
    if (pos >= this.lineEnd && this.records < maxLines && pos - this.head < maxBytes) {
      // One byte over the limit stays: it may be the CR of a CRLF, which sinks do not get.
      pos = this.cutPieces(pos, this.tail, 1, maxLines);
      const flush = this.ended || now - this.lastArrival >= this.options.partialFlushMs;
      if (flush) pos = this.cutPieces(pos, this.tail, 0, maxLines);
      if (flush && pos < this.tail && pos >= this.lineEnd && this.records < maxLines) {
        this.push(pos, this.tail, 1);
        pos = this.tail;
        if (this.ended) lines++;
        else this.owedNewline = true;
      }
    }
    const count = this.records;
    if (count === 0) return undefined;
    const bytes = pos - this.head;
    const offset = into.bytes;
    const copy = into.space(bytes);
    this.copyOut(this.head, pos, copy);
    const { ends, head, starts, stops, partials } = this;
    let entry = this.first;
    for (let i = 0; i < count; i++) {
      // A whole line is stamped with its newline's arrival, a piece with its last byte's.
      const at = head + stops[i] - partials[i];
      while (ends[entry] <= at) entry++;
      into.push(offset + starts[i], offset + stops[i], partials[i] as 0 | 1, this.times[entry], this.metas[entry]);
    }
    into.endPart(copy, lines);
    this.advanceHead(pos, newlines);
    const own = !into.inReusedMemory;
    this.outstandingBytes += bytes;
    this.outstandingLines += lines;
    if (own) this.outstandingOwnBytes += bytes;
    return { lines, bytes, own };
  }

  /**
   * Taken lines were delivered (a failed batch stays outstanding and is sent again). They count as sent now, or,
   * with `confirmLater`, once the sink confirms them (`confirm`); until then they count as buffered.
   */
  settle(taken: Taken, confirmLater = false): void {
    this.outstandingBytes -= taken.bytes;
    if (taken.own) this.outstandingOwnBytes -= taken.bytes;
    this.outstandingLines -= taken.lines;
    if (confirmLater) {
      this.unconfirmedLines += taken.lines;
      this.unconfirmedBytes += taken.bytes;
      return;
    }
    this.tally.sent(taken.lines, taken.bytes);
  }

  /** Of what buffered() counts, the lines and bytes handed to the sink's disk spool. */
  spooled(): { lines: number; bytes: number } {
    return { lines: this.spooledLines, bytes: this.spooledBytes };
  }

  /**
   * Taken lines are in the sink's disk spool: this buffer is done with them, but they are not delivered yet, so they
   * stay counted as buffered (the spool's own figures say when they are delivered).
   */
  settleToSpool(taken: Taken): void {
    this.outstandingBytes -= taken.bytes;
    if (taken.own) this.outstandingOwnBytes -= taken.bytes;
    this.outstandingLines -= taken.lines;
    this.spooledLines += taken.lines;
    this.spooledBytes += taken.bytes;
  }

  /** Lines of settled batches the peer now acknowledged: they count as sent. */
  confirm(lines: number, bytes: number): void {
    this.unconfirmedLines -= lines;
    this.unconfirmedBytes -= bytes;
    this.tally.sent(lines, bytes);
  }

  /** Lines of settled batches that will never be confirmed: they count as dropped. */
  dropUnconfirmed(reason: DropReason, lines: number, bytes: number): void {
    this.unconfirmedLines -= lines;
    this.unconfirmedBytes -= bytes;
    this.drop(reason, lines, bytes);
  }

  /** Lines counted sent were not delivered after all, and will not be sent again: they count as dropped instead. */
  unsend(reason: DropReason, lines: number, bytes: number): void {
    this.tally.sent(-lines, -bytes);
    this.drop(reason, lines, bytes);
  }

  /** When an unterminated line becomes due for an idle flush, if one is held. */
  flushDueAt(): number | undefined {
    if (this.ended || this.tail === this.lineEnd || this.tail === this.head) return undefined;
    return this.lastArrival + this.options.partialFlushMs;
  }

  /** Whole lines held and not yet taken, and the bytes held (a batch's delay waits while these are few). */
  waiting(): { lines: number; bytes: number } {
    return { lines: this.newlinesIn - this.newlinesPassed, bytes: this.tail - this.head };
  }

  /** Held and outstanding: in = sent + dropped + buffered. */
  buffered(): { lines: number; bytes: number } {
    const unterminated = this.ended && this.tail > Math.max(this.head, this.lineEnd) ? 1 : 0;
    return {
      lines: this.newlinesIn - this.newlinesPassed + unterminated + this.outstandingLines + this.unconfirmedLines + this.spooledLines,
      bytes: this.tail - this.head + this.outstandingBytes + this.unconfirmedBytes + this.spooledBytes,
    };
  }

  /** What this buffer holds that drops could free: the bytes not taken yet and their arrivals. */
  held(): number {
    return this.tail - this.head + (this.ends.length - this.first) * CHUNK_ENTRY_BYTES;
  }

  /** Nothing is held, taken and unsettled, or unconfirmed. */
  get empty(): boolean {
    const { lines, bytes } = this.buffered();
    return lines === this.spooledLines && bytes === this.spooledBytes;
  }

  /**
   * Another stream of the sink needs room and this one holds more: at least `bytes` of what it holds go (or all),
   * whole lines, per `when_full`: its oldest lines, or its newest.
   */
  shed(bytes: number): void {
    if (this.limits.whenFull === 'drop_oldest') this.evictOldest(Math.min(bytes, this.held()));
    else this.dropNewestHeld(bytes);
  }

  /** Stream bytes one more arrival could bring without a drop. */
  private room(): number {
    return this.limits.maxBytes - this.cost() - CHUNK_ENTRY_BYTES;
  }

  /** What is held now, against max_bytes. */
  private cost(): number {
    return this.held() + this.pinned();
  }

  /** What this buffer holds against max_bytes itself: what it holds, and its lines in flight in a batch's own memory. */
  ownCost(): number {
    return this.held() + this.outstandingOwnBytes;
  }

  /**
   * What drop_oldest cannot evict: batches in flight in their own memory, and what is held outside this buffer
   * (other streams' queues, the reused batch memory, a replay window).
   */
  private pinned(): number {
    return this.outstandingOwnBytes + (this.budget?.heldOutside(this) ?? 0);
  }

  private push(start: number, stop: number, partial: 0 | 1): void {
    if (this.records === this.starts.length) {
      const grown = this.records * 2;
      this.starts = copyInto(new Uint32Array(grown), this.starts);
      this.stops = copyInto(new Uint32Array(grown), this.stops);
      this.partials = copyInto(new Uint8Array(grown), this.partials);
    }
    this.starts[this.records] = start - this.head;
    this.stops[this.records] = stop - this.head;
    this.partials[this.records++] = partial;
  }

  /** Takes full-size pieces off the front of [start, stop) while it is longer than the limit (+ slack). */
  private cutPieces(start: number, stop: number, slack: number, maxLines: number): number {
    const max = this.options.maxLineBytes;
    while (stop - start > max + slack && this.records < maxLines) {
      // Back off to a character boundary so a multi-byte character is not split between records.
      let cut = start + max;
      while (cut > start + max - 3 && (this.byteAt(cut) & 0xc0) === 0x80) cut--;
      if ((this.byteAt(cut) & 0xc0) === 0x80) cut = start + max;
      this.push(start, cut, 1);
      start = cut;
    }
    return start;
  }

  private dropNewest(chunk: Buffer, start: number, room: number, time: number, meta: StreamMetadata): void {
    // Keep the lines that fit; the rest of the chunk is dropped, with the line it breaks off.
    const newline = room > 0 ? chunk.lastIndexOf(LF, start + room - 1) : -1;
    const keep = newline >= start ? newline + 1 : start;
    if (keep > start) this.copyIn(chunk, start, keep, time, meta);
    else this.dropUnterminated('buffer_full');
    this.drop('buffer_full', countNewlines(chunk, keep, chunk.length), chunk.length - keep);
    this.droppingLine = chunk[chunk.length - 1] !== LF;
  }

  private dropOldest(chunk: Buffer, start: number, time: number, meta: StreamMetadata): void {
    const incoming = chunk.length - start;
    const room = this.limits.maxBytes - this.pinned() - CHUNK_ENTRY_BYTES;
    if (incoming > room) {
      // The chunk alone is more than the buffer can hold: all that is held goes, and the chunk's oldest lines too.
      this.evict(this.tail, this.newlinesIn - this.newlinesPassed);
      const fits = chunk.length - Math.max(room, 0);
      const keep = chunk.indexOf(LF, fits - 1) + 1 || fits;
      this.drop('buffer_full', countNewlines(chunk, start, keep), keep - start);
      if (keep < chunk.length) this.copyIn(chunk, keep, chunk.length, time, meta);
      return;
    }
    this.evictOldest(this.cost() + incoming + CHUNK_ENTRY_BYTES - this.limits.maxBytes);
    this.copyIn(chunk, start, chunk.length, time, meta);
  }

  /** Evicts the oldest whole lines held, at least `over` bytes of cost (or all held). */
  private evictOldest(over: number): void {
    if (over <= 0 || this.head === this.tail) return;
    // The least to evict: bytes, less what the arrivals evicted whole give back.
    let target = this.tail;
    for (let e = this.first, freed = 0; e < this.ends.length; e++) {
      const bytesOnly = this.head + over - freed * CHUNK_ENTRY_BYTES;
      if (bytesOnly < this.ends[e]) {
        target = bytesOnly;
        break;
      }
      freed++;
      if (this.ends[e] - this.head + freed * CHUNK_ENTRY_BYTES >= over) {
        target = this.ends[e];
        break;
      }
    }
    if (target <= this.lineEnd) {
      // Whole lines: up to the newline that ends the line the target cuts.
      const to = this.findNewline(target - 1) + 1;
      this.evict(to, this.newlinesBefore(to) - this.newlinesPassed);
    } else {
      // No newline from there on (the buffer ends in one line longer than what goes): every held newline goes.
      this.evict(target, this.newlinesIn - this.newlinesPassed);
    }
  }

  /**
   * Drops the newest whole lines held, at least `bytes` of cost (or all held): first the start of an unterminated
   * line (its rest is then dropped as it arrives), then complete lines from the end.
   */
  private dropNewestHeld(bytes: number): void {
    const before = this.held();
    const lineStart = Math.max(this.head, this.lineEnd);
    if (this.tail > lineStart) {
      this.drop('buffer_full', 0, this.tail - lineStart);
      this.retractTail(lineStart);
      this.droppingLine = true;
    }
    while (before - this.held() < bytes && this.lineEnd > this.head) {
      // The line that ends at lineEnd starts just past the newline before it (or at head).
      const from = this.newlineBefore(this.lineEnd - 1) + 1;
      this.drop('buffer_full', 1, this.lineEnd - from);
      this.newlinesIn--;
      this.lineEnd = from;
      this.retractTail(from);
    }
  }

  /** Drops [head, to), which holds `newlines` newlines. */
  private evict(to: number, newlines: number): void {
    this.drop('buffer_full', newlines, to - this.head);
    this.owedNewline = false;
    this.advanceHead(to, newlines);
  }

  private copyIn(chunk: Buffer, start: number, stop: number, time: number, meta: StreamMetadata): void {
    const from = this.tail;
    for (let at = start; at < stop; ) {
      const offset = this.tail - this.base;
      const index = offset >> SEGMENT_SHIFT;
      if (index === this.segments.length) this.segments.push(this.spare.pop() ?? Buffer.allocUnsafeSlow(SEGMENT_BYTES));
      const n = Math.min(SEGMENT_BYTES - (offset & SEGMENT_MASK), stop - at);
      this.newlinesIn += copyCountingNewlines(chunk, at, at + n, this.segments[index], offset & SEGMENT_MASK);
      at += n;
      this.tail += n;
    }
    const newline = chunk.lastIndexOf(LF, stop - 1);
    if (newline >= start) this.lineEnd = from + (newline - start) + 1;
    const last = this.ends.length - 1;
    this.lastArrival = time;
    const merge =
      last >= this.first &&
      this.times[last] === time &&
      this.metas[last] === meta &&
      this.tail - (last > this.first ? this.ends[last - 1] : this.head) <= ENTRY_MAX_BYTES;
    if (merge) {
      this.ends[last] = this.tail;
      this.newlines[last] = this.newlinesIn;
    } else {
      this.ends.push(this.tail);
      this.newlines.push(this.newlinesIn);
      this.times.push(time);
      this.metas.push(meta);
    }
  }

  private drop(reason: DropReason, lines: number, bytes: number): void {
    this.tally.dropped(reason, lines, bytes);
  }

  /** Moves tail back to `to`; newlinesIn already counts only the newlines before it. */
  private retractTail(to: number): void {
    this.tail = to;
    while (this.ends.length - 1 > this.first && this.ends[this.ends.length - 2] >= to) {
      this.ends.pop();
      this.newlines.pop();
      this.times.pop();
      this.metas.pop();
    }
    if (this.ends.length > this.first) {
      this.ends[this.ends.length - 1] = to;
      this.newlines[this.newlines.length - 1] = this.newlinesIn;
    }
    if (to === this.head) this.advanceHead(to, 0);
  }

  /** Moves head to `to`, past `newlines` newlines. */
  private advanceHead(to: number, newlines: number): void {
    this.head = to;
    this.newlinesPassed += newlines;
    if (this.lineEnd < to) this.lineEnd = to;
    while (this.first < this.ends.length && this.ends[this.first] <= to) this.first++;
    if (this.first > 1024 && this.first * 2 > this.ends.length) {
      this.ends = this.ends.slice(this.first);
      this.newlines = this.newlines.slice(this.first);
      this.times = this.times.slice(this.first);
      this.metas = this.metas.slice(this.first);
      this.first = 0;
    }
    // Empty: start again at a segment boundary, so a sink that keeps up touches one segment, not all of max_bytes.
    // While it is not, every freed segment is kept: a full buffer under drop_oldest then reuses its own segments
    // instead of churning the allocator (freed 32 KiB blocks fragment the malloc heap: measured +8 MiB RSS).
    const empty = to === this.tail;
    const release = empty ? this.segments.length : (to - this.base) >> SEGMENT_SHIFT;
    if (release === 0) return;
    this.spare.push(...this.segments.splice(0, release));
    if (empty && this.spare.length > SPARE_SEGMENTS) this.spare.length = SPARE_SEGMENTS;
    this.base = empty ? to : this.base + release * SEGMENT_BYTES;
  }

  private byteAt(position: number): number {
    const offset = position - this.base;
    return this.segments[offset >> SEGMENT_SHIFT][offset & SEGMENT_MASK];
  }

  /** The first newline at or after `from`; the caller knows one lies before lineEnd. */
  private findNewline(from: number): number {
    for (;;) {
      const offset = from - this.base;
      const within = offset & SEGMENT_MASK;
      const found = this.segments[offset >> SEGMENT_SHIFT].indexOf(LF, within);
      // A segment's bytes past the tail are stale, but lineEnd bounds the search before them.
      if (found >= 0 && from + (found - within) < this.lineEnd) return from + (found - within);
      from += SEGMENT_BYTES - within;
    }
  }

  /** The last newline before `from` (head <= from < tail), or head - 1 when none is held there. */
  private newlineBefore(from: number): number {
    for (let at = from; at > this.head; ) {
      const offset = at - 1 - this.base;
      const within = offset & SEGMENT_MASK;
      const segmentStart = at - 1 - within;
      const found = this.segments[offset >> SEGMENT_SHIFT].lastIndexOf(LF, within);
      if (found >= 0 && segmentStart + found >= this.head) return segmentStart + found;
      at = segmentStart;
    }
    return this.head - 1;
  }

  /**
   * The running total of newlines at `position` (head <= position <= lineEnd): from the totals at the ends of the
   * arrivals around it, and a count of the shorter side within its arrival (at most half of ENTRY_MAX_BYTES).
   */
  private newlinesBefore(position: number): number {
    let k = this.first;
    while (this.ends[k] < position) k++;
    const start = k > this.first ? this.ends[k - 1] : this.head;
    const before = k > this.first ? this.newlines[k - 1] : this.newlinesPassed;
    const end = this.ends[k];
    if (position - start <= end - position) return before + this.newlinesBetween(start, position);
    return this.newlines[k] - this.newlinesBetween(position, end);
  }

  /** Newlines in [from, to), segment by segment. */
  private newlinesBetween(from: number, to: number): number {
    let n = 0;
    for (let at = from, stop = Math.min(to, this.lineEnd); at < stop; ) {
      const offset = at - this.base;
      const within = offset & SEGMENT_MASK;
      const end = within + Math.min(SEGMENT_BYTES - within, stop - at);
      n += countNewlines(this.segments[offset >> SEGMENT_SHIFT], within, end);
      at += end - within;
    }
    return n;
  }

  private copyOut(from: number, to: number, into: Buffer): void {
    for (let at = from; at < to; ) {
      const offset = at - this.base;
      const within = offset & SEGMENT_MASK;
      const n = Math.min(SEGMENT_BYTES - within, to - at);
      this.segments[offset >> SEGMENT_SHIFT].copy(into, at - from, within, within + n);
      at += n;
    }
  }
}

function copyInto<T extends Uint32Array | Uint8Array>(target: T, source: T): T {
  target.set(source);
  return target;
}
