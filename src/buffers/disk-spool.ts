import { isUtf8 } from 'node:buffer';
import { lstat, mkdir, readdir, stat, unlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import { RateLimitedLog, type Logger } from '../diagnostics.js';
import { LineBatch } from '../lines/line-batch.js';
import type { WhenFull } from '../lines/line-buffer.js';
import type { StreamMetadata } from '../mesos/metadata.js';
import { readAck, removeAck, writeAck, type AckPosition } from './ack-file.js';
import { COUNTS_LINE, encodeLine, encodeMeta, FRAME_HEADER_BYTES, lineFrameBytes, MAX_BODY_BYTES, PARTIAL } from './record-codec.js';
import { FrameReader, Segment, SEGMENT_HEADER, segmentSeq } from './segment.js';

export interface SpoolOptions {
  /** Bytes on disk, segments whole (acknowledged records of the oldest one included); beyond, `whenFull` applies. */
  maxBytes: number;
  whenFull: WhenFull;
  /** Written data is fsynced (and the acknowledged position saved) this often; and at close. */
  fsyncMs?: number;
  /** A segment is closed for appends at about this size; default maxBytes / 16, from 64 KiB to 64 MiB. */
  segmentBytes?: number;
  /** Appended and not yet written: past this, append() answers 'busy' (memory stays bounded on a slow disk). */
  maxPendingBytes?: number;
  /** After a write error, the next attempt comes this much later. */
  retryMs?: number;
}

/** spool_full: `when_full` applied on disk. corrupt: a torn or damaged record. disk_error: lines a failed disk lost. */
export type SpoolDropReason = 'spool_full' | 'corrupt' | 'disk_error';

interface Count {
  lines: number;
  bytes: number;
}

export interface SpoolStats {
  /** What the segments take (the logical size: pending bytes included). */
  bytesOnDisk: number;
  segments: number;
  /** Appended (or recovered) and not yet acknowledged nor dropped, in flight included. */
  heldLines: number;
  heldBytes: number;
  /** Found at open; appended, acknowledged and dropped since. recovered + appended = acked + dropped + held. */
  recovered: Count;
  appended: Count;
  acked: Count;
  /**
   * By reason. A damaged range found at open counts one line per range (a torn record is one), and is not part of
   * `recovered`; damage found later counts the lines of the segment that did not come out.
   */
  droppedBy: Record<SpoolDropReason, Count>;
  /** Appended and not yet written. */
  pendingBytes: number;
  /** The last write failed (the error code); appends answer 'busy' until a retry succeeds. */
  writeError: string | undefined;
}

/** What append() did with a batch: spooled (the spool owns a copy), dropped (counted), or busy (try again later). */
export type AppendResult = 'spooled' | 'dropped' | 'busy';

/** Lines a batch took from one segment: acknowledging the batch acknowledges the segment up to `end`. */
interface TakenRange {
  segment: Segment;
  end: number;
  lines: number;
  bytes: number;
}

/** The segment being read: its reader and the metadata its records referred to so far. */
interface ReadCursor {
  segment: Segment;
  frames: FrameReader;
  metas: Map<number, StreamMetadata>;
  /** Line records before this offset were acknowledged before a restart: they are read past, not taken. */
  skipBelow: number;
}

const DEFAULT_FSYNC_MS = 500;
const DEFAULT_MAX_PENDING_BYTES = 4 << 20;
const DEFAULT_RETRY_MS = 2000;
/** One write call writes at most this much. */
const WRITE_BYTES = 1 << 20;

/**
 * Spools open in this process, by directory, until closed. A sink replaced by a reload still delivers from its spool
 * while its successor opens the same directory: the successor waits for it to close.
 */
const openDirs = new Map<string, Promise<void>>();

/** The stable identity of a stream in a spool: its sandbox and which stream of it. */
export const streamKey = (meta: StreamMetadata): string => `${meta.sandbox}:${meta.stream}`;

/**
 * A sink's disk buffer (docs/spool.md): lines appended in batches are written to append-only segment files as
 * length-and-CRC framed records, taken back in order as batches for the sink to send, and deleted a segment at a
 * time once every line in it is acknowledged. It survives a SIGKILL: `open` scans what is there, skips and counts
 * damaged records, and resumes after the acknowledged position. Memory stays bounded whatever it holds: segments are
 * read in chunks, and appends wait (`busy`) while too much is not yet written.
 *
 * Disk errors never throw to the caller: a failed write makes append() answer 'busy' (the caller keeps lines in
 * memory and applies its own bound), what was appended stays readable from memory, and the write is retried.
 */
export class DiskSpool {
  private readonly segments: Segment[] = [];
  private nextSeq: number;
  private cursor: ReadCursor | undefined;
  private readonly taken = new WeakMap<LineBatch, TakenRange[]>();
  private readonly counts = {
    recovered: { lines: 0, bytes: 0 },
    appended: { lines: 0, bytes: 0 },
    acked: { lines: 0, bytes: 0 },
    droppedBy: { spool_full: { lines: 0, bytes: 0 }, corrupt: { lines: 0, bytes: 0 }, disk_error: { lines: 0, bytes: 0 } },
  };
  private held = { lines: 0, bytes: 0 };
  /** Lines (and their stream bytes) not yet taken nor dropped: what take() may find. */
  private readonly untaken = { lines: 0, bytes: 0 };
  /** Writes, syncs, deletions and the ack file, one at a time, in order. */
  private io: Promise<void> = Promise.resolve();
  private writing = false;
  private writeError: string | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly syncTimer: NodeJS.Timeout;
  private ackDirty = false;
  private reading: Promise<unknown> = Promise.resolve();
  private readonly writableWaiters: (() => void)[] = [];
  private closed = false;
  /** Lets the next open of this directory in this process go ahead. */
  private release = (): void => undefined;
  private readonly errors: RateLimitedLog;
  private readonly segmentBytes: number;
  private readonly maxPendingBytes: number;

  private constructor(
    readonly dir: string,
    private readonly options: SpoolOptions,
    private readonly log: Logger,
    lastSeq: number,
  ) {
    this.nextSeq = lastSeq + 1;
    this.segmentBytes = options.segmentBytes ?? Math.min(64 << 20, Math.max(64 << 10, Math.floor(options.maxBytes / 16)));
    this.maxPendingBytes = options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    this.errors = new RateLimitedLog(log);
    this.syncTimer = setInterval(() => this.enqueue(() => this.sync()), options.fsyncMs ?? DEFAULT_FSYNC_MS);
    this.syncTimer.unref();
  }

  /**
   * Opens (creating) the spool in `dir` and recovers what a previous run left: segments before the acknowledged
   * position are deleted, the others scanned record by record (CRC checked), damage counted and logged.
   */
  static async open(dir: string, options: SpoolOptions, log: Logger): Promise<DiskSpool> {
    dir = resolve(dir);
    for (let previous = openDirs.get(dir); previous !== undefined; previous = openDirs.get(dir)) await previous;
    let release = (): void => undefined;
    openDirs.set(dir, new Promise<void>((done) => (release = done)));
    try {
      const spool = await DiskSpool.recoverIn(dir, options, log);
      spool.release = () => {
        openDirs.delete(dir);
        release();
      };
      return spool;
    } catch (err) {
      openDirs.delete(dir);
      release();
      throw err;
    }
  }

  private static async recoverIn(dir: string, options: SpoolOptions, log: Logger): Promise<DiskSpool> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // Its parent may be shared by the workers of several users (sticky, like /tmp): this one must be ours alone, and
    // not a link someone else planted.
    const own = await lstat(dir);
    if (!own.isDirectory() || own.uid !== process.geteuid?.() || (own.mode & 0o022) !== 0) {
      throw new Error(`${dir} must be a directory owned by uid ${process.geteuid?.()} and writable by it alone`);
    }
    let ack: AckPosition | undefined;
    try {
      ack = await readAck(dir);
    } catch (err) {
      log.warn({ dir, err: (err as Error).message }, 'spool: the acknowledged position is unreadable; sending the whole spool again');
    }
    const seqs = (await readdir(dir))
      .map(segmentSeq)
      .filter((seq): seq is number => seq !== undefined)
      .sort((a, b) => a - b);
    const spool = new DiskSpool(dir, options, log, seqs.at(-1) ?? 0);
    for (const seq of seqs) await spool.recover(seq, ack);
    const { recovered, droppedBy } = spool.counts;
    if (seqs.length > 0) {
      log.info({ dir, segments: spool.segments.length, lines: recovered.lines, bytes: recovered.bytes, corrupt: droppedBy.corrupt }, 'spool recovered');
    }
    return spool;
  }

  /**
   * Appends a batch's lines, never blocking (the writes happen behind). The spool keeps its own copy. 'busy': too much
   * is not yet written, or the disk failed; nothing was taken, and `writable()` says when to try again.
   */
  append(batch: LineBatch): AppendResult {
    if (this.closed || this.writeError !== undefined || this.pendingBytes() >= this.maxPendingBytes) return 'busy';
    const { starts, stops, partials, count } = batch;
    let frames = 0;
    let newlines = 0;
    let longest = 0;
    for (let i = 0; i < count; i++) {
      const frameBytes = lineFrameBytes((i + 1 < count ? starts[i + 1] : batch.bytes) - starts[i]);
      frames += frameBytes;
      longest = Math.max(longest, frameBytes);
      newlines += partials[i] === 1 ? 0 : 1;
    }
    // A record longer than a reader accepts (max_line_bytes over 16 MiB) could never be read back.
    const fits = frames + SEGMENT_HEADER.length <= this.options.maxBytes && longest - FRAME_HEADER_BYTES <= MAX_BODY_BYTES;
    if (!fits || !this.makeRoom(frames)) {
      this.drop('spool_full', batch.lines, batch.bytes);
      return 'dropped';
    }
    // One buffer for the batch's line records; metadata records go between its pieces.
    const encoded = Buffer.allocUnsafe(frames);
    let segment = this.writeSegment();
    let pieceStart = 0;
    let at = 0;
    let piece = { lines: 0, bytes: 0 };
    const flushPiece = (): void => {
      if (at > pieceStart) segment.append({ data: encoded.subarray(pieceStart, at), ...piece });
      segment.lines += piece.lines;
      segment.bytes += piece.bytes;
      pieceStart = at;
      piece = { lines: 0, bytes: 0 };
    };
    for (let i = 0; i < count; i++) {
      const start = starts[i];
      const end = i + 1 < count ? starts[i + 1] : batch.bytes;
      const frameBytes = lineFrameBytes(end - start);
      if (segment.size + (at - pieceStart) + frameBytes > this.segmentBytes && segment.size + (at - pieceStart) > SEGMENT_HEADER.length) {
        flushPiece();
        segment.sealed = true;
        segment = this.writeSegment();
      }
      const meta = batch.metas[i];
      let ref = segment.refs.get(meta);
      if (ref === undefined) {
        flushPiece();
        ref = segment.refs.size;
        segment.refs.set(meta, ref);
        segment.append({ data: encodeMeta(ref, streamKey(meta), meta), lines: 0, bytes: 0 });
      }
      // The last line of a batch taken at end of stream counts as a line without its newline.
      const counts = partials[i] === 0 || (i === count - 1 && batch.lines > newlines);
      const flags = (partials[i] === 1 ? PARTIAL : 0) | (counts ? COUNTS_LINE : 0);
      at = encodeLine(encoded, at, ref, flags, batch.times[i], stops[i] - start, batch.data.subarray(start, end));
      piece.lines += counts ? 1 : 0;
      piece.bytes += end - start;
    }
    flushPiece();
    this.counts.appended.lines += batch.lines;
    this.counts.appended.bytes += batch.bytes;
    this.held.lines += batch.lines;
    this.held.bytes += batch.bytes;
    this.untaken.lines += batch.lines;
    this.untaken.bytes += batch.bytes;
    this.startWriting();
    return 'spooled';
  }

  /** Resolves when append() may take lines again (or the spool closed). */
  writable(): Promise<void> {
    if (this.closed || (this.writeError === undefined && this.pendingBytes() < this.maxPendingBytes)) return Promise.resolve();
    return new Promise((resolve) => this.writableWaiters.push(resolve));
  }

  /** Lines and stream bytes not yet taken: what take() has to give. */
  waiting(): { lines: number; bytes: number } {
    return { ...this.untaken };
  }

  /**
   * The next lines in order, as a batch of at most `maxLines` records and about `maxBytes` (one line may go over), or
   * undefined when none are left. Takes run one at a time; batches are acknowledged in the order they were taken.
   */
  take(maxLines: number, maxBytes: number): Promise<LineBatch | undefined> {
    const taking = this.reading.then(() => this.takeNow(maxLines, maxBytes));
    this.reading = taking.catch(() => undefined);
    return taking;
  }

  /** The batch was delivered: its lines are done with, and segments all of whose lines are, deleted. */
  ack(batch: LineBatch): void {
    const ranges = this.taken.get(batch);
    if (ranges === undefined) return;
    this.taken.delete(batch);
    for (const range of ranges) {
      this.counts.acked.lines += range.lines;
      this.counts.acked.bytes += range.bytes;
      this.held.lines -= range.lines;
      this.held.bytes -= range.bytes;
      const segment = range.segment;
      segment.outstanding--;
      if (segment.deleted) continue;
      segment.ackedOffset = Math.max(segment.ackedOffset, range.end);
      this.ackDirty = true;
      this.deleteIfDone(segment);
    }
  }

  get stats(): SpoolStats {
    const copy = (count: Count): Count => ({ ...count });
    return {
      bytesOnDisk: this.segments.reduce((sum, segment) => sum + segment.size, 0),
      segments: this.segments.length,
      heldLines: this.held.lines,
      heldBytes: this.held.bytes,
      recovered: copy(this.counts.recovered),
      appended: copy(this.counts.appended),
      acked: copy(this.counts.acked),
      droppedBy: {
        spool_full: copy(this.counts.droppedBy.spool_full),
        corrupt: copy(this.counts.droppedBy.corrupt),
        disk_error: copy(this.counts.droppedBy.disk_error),
      },
      pendingBytes: this.pendingBytes(),
      writeError: this.writeError,
    };
  }

  /**
   * Writes what is pending (one more try after a disk error), fsyncs, saves the acknowledged position and closes the
   * files. Lines that could not be written are counted dropped (disk_error).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.syncTimer);
    clearTimeout(this.retryTimer);
    this.wakeWriters();
    await this.reading;
    this.writeError = undefined;
    this.enqueue(() => this.writeAll());
    this.enqueue(() => this.sync());
    // A step may queue another (a deletion): wait for the chain to stay put.
    for (let io; io !== this.io; ) await (io = this.io);
    for (const segment of this.segments) {
      if (segment.pendingBytes === 0) continue;
      // Taken lines are the sender's now; only those never taken are lost.
      const from = this.cursor?.segment === segment ? this.cursor.frames.position : segment.exhausted ? Infinity : 0;
      const lost = segment.unwritten(from);
      this.drop('disk_error', lost.lines, lost.bytes);
      segment.forgetPending();
    }
    await Promise.all(this.segments.map((segment) => segment.close()));
    this.release();
  }

  private async recover(seq: number, ack: AckPosition | undefined): Promise<void> {
    const segment = new Segment(this.dir, seq, { size: 0, lines: 0, bytes: 0, ackedOffset: 0 });
    if (ack !== undefined && seq < ack.segment) return this.remove(segment);
    const size = (await stat(segment.path)).size;
    segment.size = segment.written = segment.synced = size;
    const header = Buffer.alloc(SEGMENT_HEADER.length);
    const headerBytes = size >= header.length ? await segment.read(header, 0, header.length) : 0;
    if (headerBytes < header.length || !header.equals(SEGMENT_HEADER)) {
      if (size > 0) {
        this.drop('corrupt', 1, size);
        this.log.warn({ file: segment.path, bytes: size }, 'spool: not a segment (no header); deleted unread');
      }
      return this.remove(segment);
    }
    const skipBelow = ack?.segment === seq ? ack.offset : 0;
    segment.ackedOffset = skipBelow;
    const refs = new Set<number>();
    const frames = new FrameReader((into, position, length) => segment.read(into, position, length), SEGMENT_HEADER.length, () => size);
    for (let item = await frames.next(); item !== undefined; item = await frames.next()) {
      if (item.kind === 'damaged') {
        this.countDamage(segment, item.at, item.bytes, item.why, 1);
      } else if (item.frame.kind === 'meta') {
        refs.add(item.frame.ref);
      } else if (item.at >= skipBelow) {
        if (!refs.has(item.frame.ref)) {
          this.countDamage(segment, item.at, item.frame.bytes, 'its metadata record is missing', 1);
          continue;
        }
        const lines = item.frame.flags & COUNTS_LINE ? 1 : 0;
        segment.lines += lines;
        segment.bytes += item.frame.stream.length;
      }
    }
    if (segment.lines === 0 && segment.bytes === 0) return this.remove(segment);
    this.segments.push(segment);
    this.counts.recovered.lines += segment.lines;
    this.counts.recovered.bytes += segment.bytes;
    this.held.lines += segment.lines;
    this.held.bytes += segment.bytes;
    this.untaken.lines += segment.lines;
    this.untaken.bytes += segment.bytes;
  }

  private async takeNow(maxLines: number, maxBytes: number): Promise<LineBatch | undefined> {
    let data: Buffer<ArrayBuffer> = Buffer.allocUnsafe(Math.min(maxBytes, 64 * 1024));
    let bytes = 0;
    const starts: number[] = [];
    const stops: number[] = [];
    const partials: number[] = [];
    const times: number[] = [];
    const metas: StreamMetadata[] = [];
    const ranges: TakenRange[] = [];
    let lines = 0;
    while (starts.length < maxLines && bytes < maxBytes) {
      const cursor = this.readCursor();
      if (cursor === undefined) break;
      const segment = cursor.segment;
      let item;
      try {
        item = await cursor.frames.next();
      } catch (err) {
        if (!segment.deleted) {
          this.errors.error({ file: segment.path, err: (err as Error).message }, 'spool: a segment cannot be read; its unread lines are dropped (disk_error)');
          this.dropUntaken(segment, 'disk_error');
          this.finishSegment(cursor);
        }
        continue;
      }
      if (this.cursor !== cursor) continue; // the segment was dropped meanwhile (drop_oldest)
      if (item === undefined) {
        if (!segment.sealed) break;
        this.finishSegment(cursor);
        continue;
      }
      if (item.kind === 'damaged') {
        if (!segment.recovered) this.countDamage(segment, item.at, item.bytes, item.why, 0);
        continue;
      }
      const frame = item.frame;
      if (frame.kind === 'meta') {
        cursor.metas.set(frame.ref, frame.meta as StreamMetadata);
        continue;
      }
      if (item.at < cursor.skipBelow) continue;
      const meta = cursor.metas.get(frame.ref);
      // Recovery counted it already; for a segment of this run, finishSegment counts what did not come out.
      if (meta === undefined) continue;
      const n = frame.stream.length;
      if (bytes + n > data.length) data = grow(data, bytes + n);
      frame.stream.copy(data, bytes);
      starts.push(bytes);
      stops.push(bytes + frame.textBytes);
      partials.push(frame.flags & PARTIAL ? 1 : 0);
      times.push(frame.time);
      metas.push(meta);
      bytes += n;
      const counted = frame.flags & COUNTS_LINE ? 1 : 0;
      lines += counted;
      segment.takenLines += counted;
      segment.takenBytes += n;
      this.untaken.lines -= counted;
      this.untaken.bytes -= n;
      let range = ranges.at(-1);
      if (range?.segment !== segment) {
        range = { segment, end: 0, lines: 0, bytes: 0 };
        ranges.push(range);
        segment.outstanding++;
      }
      range.end = cursor.frames.position;
      range.lines += counted;
      range.bytes += n;
    }
    if (starts.length === 0) return undefined;
    const copy = data.subarray(0, bytes);
    const batch = new LineBatch(
      copy,
      Uint32Array.from(starts),
      Uint32Array.from(stops),
      Uint8Array.from(partials),
      Float64Array.from(times),
      metas,
      isUtf8(copy),
      lines,
    );
    this.taken.set(batch, ranges);
    return batch;
  }

  /** The cursor on the oldest segment with lines not yet taken, made when needed. */
  private readCursor(): ReadCursor | undefined {
    if (this.cursor !== undefined && !this.cursor.segment.deleted) return this.cursor;
    const segment = this.segments.find((s) => !s.exhausted);
    if (segment === undefined) return (this.cursor = undefined);
    const frames = new FrameReader((into, position, length) => segment.read(into, position, length), SEGMENT_HEADER.length, () => segment.size);
    this.cursor = { segment, frames, metas: new Map(), skipBelow: segment.ackedOffset };
    return this.cursor;
  }

  /** The reader is past the segment's end: lines of it that did not come out were damaged on disk. */
  private finishSegment(cursor: ReadCursor): void {
    const segment = cursor.segment;
    segment.exhausted = true;
    this.cursor = undefined;
    const missing = { lines: segment.lines - segment.takenLines, bytes: segment.bytes - segment.takenBytes };
    if (missing.lines > 0 || missing.bytes > 0) {
      this.untaken.lines -= missing.lines;
      this.untaken.bytes -= missing.bytes;
      this.held.lines -= missing.lines;
      this.held.bytes -= missing.bytes;
      this.drop('corrupt', missing.lines, missing.bytes);
      segment.takenLines = segment.lines;
      segment.takenBytes = segment.bytes;
    }
    this.deleteIfDone(segment);
  }

  private countDamage(segment: Segment, at: number, bytes: number, why: string, lines: number): void {
    this.drop('corrupt', lines, lines === 0 ? 0 : bytes);
    this.log.warn({ file: segment.path, offset: at, bytes, why }, 'spool: skipped a damaged record; it is not delivered');
  }

  /** The segment appends go to: the newest, or a new one. */
  private writeSegment(): Segment {
    const last = this.segments.at(-1);
    if (last !== undefined && !last.sealed) return last;
    const segment = new Segment(this.dir, this.nextSeq++);
    this.segments.push(segment);
    return segment;
  }

  /** Under drop_oldest, deletes whole oldest segments until `bytes` more fit; false when they cannot. */
  private makeRoom(bytes: number): boolean {
    const size = (): number => this.segments.reduce((sum, segment) => sum + segment.size, 0);
    // A new segment's header may come on top.
    const need = bytes + SEGMENT_HEADER.length;
    if (size() + need <= this.options.maxBytes) return true;
    if (this.options.whenFull === 'drop_newest') return false;
    let dropped = 0;
    while (this.segments.length > 0 && size() + need > this.options.maxBytes) {
      const oldest = this.segments[0];
      oldest.sealed = true;
      dropped += oldest.lines - oldest.takenLines;
      this.dropUntaken(oldest, 'spool_full');
      this.remove(oldest);
    }
    this.errors.error({ dir: this.dir, lines: dropped }, 'spool full: deleted its oldest segments (drop_oldest); their lines are dropped (spool_full)');
    return true;
  }

  /** Lines of the segment not yet taken are dropped for `reason`. */
  private dropUntaken(segment: Segment, reason: SpoolDropReason): void {
    const lines = segment.lines - segment.takenLines;
    const bytes = segment.bytes - segment.takenBytes;
    segment.takenLines = segment.lines;
    segment.takenBytes = segment.bytes;
    this.untaken.lines -= lines;
    this.untaken.bytes -= bytes;
    this.held.lines -= lines;
    this.held.bytes -= bytes;
    this.drop(reason, lines, bytes);
  }

  /** Every line of the segment was taken and acknowledged, and everything appended to it written. */
  private drained(segment: Segment): boolean {
    const read = this.cursor?.segment === segment ? this.cursor.frames.position >= segment.size : segment.exhausted;
    return read && segment.outstanding === 0 && segment.pendingBytes === 0 && segment.takenLines === segment.lines && segment.takenBytes === segment.bytes;
  }

  private deleteIfDone(segment: Segment): void {
    if (segment.sealed && segment.exhausted && segment.outstanding === 0) this.remove(segment);
  }

  /** Takes the segment out of the spool and deletes its file, behind the writes queued before. */
  private remove(segment: Segment): void {
    segment.deleted = true;
    segment.forgetPending();
    const index = this.segments.indexOf(segment);
    if (index >= 0) this.segments.splice(index, 1);
    if (this.cursor?.segment === segment) this.cursor = undefined;
    this.ackDirty = true;
    this.enqueue(async () => {
      await segment.close();
      await unlink(segment.path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') this.errors.error({ file: segment.path, err: err.message }, 'spool: cannot delete a segment');
      });
    });
  }

  private drop(reason: SpoolDropReason, lines: number, bytes: number): void {
    this.counts.droppedBy[reason].lines += lines;
    this.counts.droppedBy[reason].bytes += bytes;
  }

  private pendingBytes(): number {
    return this.segments.reduce((sum, segment) => sum + segment.pendingBytes, 0);
  }

  private enqueue(step: () => Promise<void>): void {
    this.io = this.io.then(step).catch((err: Error) => this.errors.error({ dir: this.dir, err: err.message }, 'spool: unexpected error'));
  }

  private startWriting(): void {
    if (this.writing || this.writeError !== undefined) return;
    this.writing = true;
    this.enqueue(() => this.writeAll());
  }

  /** Writes every segment's pending bytes, oldest first. A failure stops appends until a retry succeeds. */
  private async writeAll(): Promise<void> {
    try {
      for (let segment = this.firstPending(); segment !== undefined; segment = this.firstPending()) {
        await segment.writePending(WRITE_BYTES);
        if (this.pendingBytes() < this.maxPendingBytes) this.wakeWriters();
      }
      if (this.writeError !== undefined) {
        this.log.info({ dir: this.dir, after: this.writeError }, 'spool: writing again');
        this.writeError = undefined;
      }
      this.wakeWriters();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      if (this.writeError === undefined) {
        this.log.error(
          { dir: this.dir, err: (err as Error).message, retryInMs: this.options.retryMs ?? DEFAULT_RETRY_MS },
          'spool: a write failed; lines stay in memory (the sink\'s memory buffer bound applies) until the disk takes writes again',
        );
      }
      this.writeError = code;
      // A partial write would leave a torn record where the next write goes: cut back to what is whole.
      const failed = this.firstPending();
      await failed?.handle?.truncate(failed.written).catch(() => undefined);
      if (!this.closed) {
        this.retryTimer = setTimeout(() => {
          this.writing = true;
          this.enqueue(() => this.writeAll());
        }, this.options.retryMs ?? DEFAULT_RETRY_MS);
        this.retryTimer.unref();
      }
    } finally {
      this.writing = false;
    }
  }

  private firstPending(): Segment | undefined {
    return this.segments.find((segment) => segment.pendingBytes > 0);
  }

  /**
   * Fsyncs what was written since the last sync, and saves the acknowledged position if it moved. A segment still
   * open for appends whose lines were all taken and acknowledged is deleted here too, so a drained spool leaves no
   * files, at most one new segment per sync period when the sink keeps up.
   */
  private async sync(): Promise<void> {
    const last = this.segments.at(-1);
    if (last !== undefined && !last.sealed && this.drained(last)) {
      last.sealed = true;
      last.exhausted = true;
      this.remove(last);
    }
    for (const segment of this.segments) {
      if (segment.written === segment.synced || segment.handle === undefined) continue;
      const written = segment.written;
      try {
        await segment.handle.datasync();
        segment.synced = written;
      } catch (err) {
        this.errors.error({ file: segment.path, err: (err as Error).message }, 'spool: fsync failed');
      }
    }
    if (!this.ackDirty) return;
    this.ackDirty = false;
    const first = this.segments[0];
    try {
      // No segment left: no position to keep (the next segment's number follows the highest file found at open).
      if (first === undefined) await removeAck(this.dir);
      else await writeAck(this.dir, { segment: first.seq, offset: first.ackedOffset });
    } catch (err) {
      this.ackDirty = true;
      this.errors.error({ dir: this.dir, err: (err as Error).message }, 'spool: cannot save the acknowledged position');
    }
  }

  private wakeWriters(): void {
    for (const wake of this.writableWaiters.splice(0)) wake();
  }
}

function grow(data: Buffer, need: number): Buffer<ArrayBuffer> {
  const grown = Buffer.allocUnsafe(Math.max(need, data.length * 2));
  data.copy(grown);
  return grown;
}
