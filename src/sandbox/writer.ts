import { EventEmitter } from 'node:events';
import { close, fstat, ftruncate, stat, write } from 'node:fs';
import { promisify } from 'node:util';
import type { Logger } from '../diagnostics.js';
import { RateLimitedLog } from '../diagnostics.js';
import { chooseCut } from './cut.js';
import type { Rotation } from './rotation.js';
import { openLiveFile } from './sandbox-fs.js';

const writeAsync = promisify(write);
const fstatAsync = promisify(fstat);
const ftruncateAsync = promisify(ftruncate);
const statAsync = promisify(stat);
const closeAsync = promisify(close);

/**
 * The stage's usual size: a batch in flight plus what arrives meanwhile, each up to the high-water mark and a read.
 * It grows for held tails and oversized chunks, and shrinks back from past MAX_KEPT_STAGE once mostly emptied.
 */
const STAGE_SIZE = 1024 * 1024;
const MAX_KEPT_STAGE = 4 * STAGE_SIZE;

export interface SandboxWriterOptions {
  path: string;
  maxSize: number;
  rotation: Rotation;
  log: Logger;
  /** Bytes queued before write() asks the source to pause (default 256 KiB: batches stay large, memory small). */
  highWaterMark?: number;
  /** How long an unterminated last line waits for its newline before it is written anyway. */
  partialLineDelayMs?: number;
  /** After a disk error, input is dropped (and counted) for this long before the file is tried again. */
  retryDelayMs?: number;
}

export interface SandboxStats {
  bytesIn: number;
  bytesWritten: number;
  bytesDropped: number;
  rotations: number;
  diskErrors: number;
}

/**
 * Appends a byte stream to the live sandbox file and rotates it at `maxSize`, cutting on line boundaries.
 * Bytes are never transcoded. Writes are batched: whatever arrived while the previous write was on disk goes in one
 * write. A disk error never stops the stream: the bytes are counted as dropped and the file is retried later. A line
 * that loses bytes to a disk error is dropped whole, so the file never holds part of one followed by another line.
 * Events: 'drain' when the queue falls below the high-water mark.
 * Not built on rotating-file-stream: it rotates after the write that crosses the size (files would exceed
 * --max_size), cannot cut between lines, and lacks delaycompress, scripts and copytruncate.
 */
export class SandboxWriter extends EventEmitter {
  readonly stats: SandboxStats = { bytesIn: 0, bytesWritten: 0, bytesDropped: 0, rotations: 0, diskErrors: 0 };
  private readonly highWaterMark: number;
  private readonly partialLineDelayMs: number;
  private readonly retryDelayMs: number;
  private readonly holdLimit: number;
  private readonly errors: RateLimitedLog;
  /** Rotation can leave the live file in place at every rotation, and a task can arrange that. */
  private readonly unmoved: RateLimitedLog;
  /**
   * Bytes not yet on disk, [0, filled), copied out of the caller's chunks into one buffer reused for the whole
   * stream: the batch being written, then the held tail (`heldLength` bytes), then `queued` new bytes.
   * Why: allocating per chunk or per batch (Buffer.concat) leaves up to ~32 MB of dead ArrayBuffers between V8's
   * young-generation GCs, most of the helper's peak RSS. Copying also lets the source reuse its read buffer.
   */
  private stage = Buffer.allocUnsafeSlow(STAGE_SIZE);
  private filled = 0;
  private queued = 0;
  /** The unterminated tail of the input, held back so a rotation does not split its line. */
  private heldLength = 0;
  private heldSince = 0;
  private heldTimer: NodeJS.Timeout | undefined;
  private fd: number | undefined;
  /** Bytes counted against the live file. */
  private size = 0;
  /**
   * Bytes of the live file's last line when it has no newline yet (a long line cut at the limit, or a partial line
   * flushed on time); 0 when the file ends with a newline.
   */
  private openLine = 0;
  /** A disk error dropped part of the input's current line: its rest is dropped too, up to its newline. */
  private droppingLineRest = false;
  private failedUntil = 0;
  /** When the open live file was last checked to still be the one at the path. */
  private checkedAt = 0;
  private pumping = false;
  private ending = false;
  private finished = false;
  private ended: Promise<void> | undefined;
  private endedResolve: (() => void) | undefined;

  constructor(private readonly options: SandboxWriterOptions) {
    super();
    this.highWaterMark = options.highWaterMark ?? 256 * 1024;
    this.partialLineDelayMs = options.partialLineDelayMs ?? 50;
    this.retryDelayMs = options.retryDelayMs ?? 1000;
    this.holdLimit = Math.min(options.maxSize, 1 << 20);
    this.errors = new RateLimitedLog(options.log);
    this.unmoved = new RateLimitedLog(options.log);
  }

  /** Queues a copy of the chunk (the caller may reuse it). Returns false when the caller should wait for 'drain'. */
  write(chunk: Buffer): boolean {
    this.stats.bytesIn += chunk.length;
    if (this.filled + chunk.length > this.stage.length) this.resize(this.filled + chunk.length);
    this.filled += chunk.copy(this.stage, this.filled);
    this.queued += chunk.length;
    this.pump();
    return this.queued < this.highWaterMark;
  }

  /** Moves the unwritten bytes into a new stage of at least `needed` bytes. */
  private resize(needed: number): void {
    let size = STAGE_SIZE;
    while (size < needed) size *= 2;
    const stage = Buffer.allocUnsafeSlow(size);
    // An in-flight write keeps its view of the old buffer; the bytes from it on move along.
    this.stage.copy(stage, 0, 0, this.filled);
    this.stage = stage;
  }

  /** Writes everything still queued or held, closes the file and waits for rotation work to finish. */
  end(): Promise<void> {
    if (this.ended === undefined) {
      this.ending = true;
      this.options.rotation.streamEnded();
      this.ended = new Promise((resolve) => (this.endedResolve = resolve));
      this.pump();
    }
    return this.ended;
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    this.drainQueue().then(
      () => this.afterPump(),
      (err) => {
        // drainQueue handles I/O errors itself; this is a bug, and the stream must keep flowing regardless.
        this.options.log.error({ err }, 'sandbox writer failed unexpectedly');
        this.afterPump();
      },
    );
  }

  private afterPump(): void {
    this.pumping = false;
    if (this.queued > 0 || (this.ending && this.heldLength > 0)) return this.pump();
    if (this.heldLength > 0 && this.heldTimer === undefined) {
      const wait = Math.max(0, this.heldSince + this.partialLineDelayMs - Date.now());
      this.heldTimer = setTimeout(() => {
        this.heldTimer = undefined;
        this.pump();
      }, wait);
    }
    if (this.ending && this.heldLength === 0) void this.finish();
  }

  private async drainQueue(): Promise<void> {
    while (this.queued > 0 || this.heldExpired()) {
      const heldBefore = this.heldLength;
      const flushTail = this.heldExpired();
      const data = this.stage.subarray(0, this.filled);
      this.queued = 0;
      this.heldLength = 0;
      this.emit('drain');

      let body = data;
      if (!flushTail) {
        // The held tail has no newline: search only what came after it, so a long line in small writes stays linear.
        const found = data.subarray(heldBefore).lastIndexOf(0x0a);
        const lastNewline = found < 0 ? -1 : heldBefore + found;
        const tail = data.length - lastNewline - 1;
        if (tail > 0 && tail <= this.holdLimit) {
          body = data.subarray(0, lastNewline + 1);
          this.heldLength = tail;
          // The clock runs from the oldest held byte: a tail that only grows keeps its first arrival time.
          if (heldBefore === 0 || lastNewline >= 0) this.heldSince = Date.now();
        }
      }
      if (body.length > 0) {
        await this.append(body);
        // Written or dropped: the held tail and whatever arrived meanwhile move to the front.
        this.stage.copyWithin(0, body.length, this.filled);
        this.filled -= body.length;
        if (this.stage.length > MAX_KEPT_STAGE && this.filled <= STAGE_SIZE / 2) this.resize(this.filled);
      }
    }
  }

  /** A held tail is written once it has waited long enough, or when the stream ends. */
  private heldExpired(): boolean {
    if (this.heldLength === 0) return false;
    return this.ending || Date.now() - this.heldSince >= this.partialLineDelayMs;
  }

  /** Appends bytes to the live file, rotating on the way as often as needed. */
  private async append(data: Buffer): Promise<void> {
    const { maxSize, rotation } = this.options;
    let offset = this.droppingLineRest ? this.dropLineRest(data) : 0;
    while (offset < data.length) {
      if (!(await this.openLive())) return this.drop(data.subarray(offset));
      const room = Math.max(0, maxSize - this.size);
      const rest = data.length - offset;
      const length = rest <= room ? rest : chooseCut(data, offset, room, this.size, rotation.minFill, this.openLine > 0);
      if (length > 0 && !(await this.writeAll(data.subarray(offset, offset + length)))) {
        return this.drop(data.subarray(offset + length));
      }
      offset += length;
      if (offset < data.length) await this.rotate();
    }
  }

  private async rotate(): Promise<void> {
    const before = this.size;
    await this.closeLive();
    await this.options.rotation.rotate();
    this.stats.rotations++;
    if (await this.openLive()) {
      if (this.size > 0 && this.size >= before) {
        // Rotation left the file in place (logrotate declined, a rename failed, old files are still moving up, or
        // the time after EOF is up). Count from zero, as the original does, so the stream keeps moving instead of
        // rotating again and again.
        this.unmoved.error({ path: this.options.path, size: this.size }, 'rotation did not move the live file');
        this.size = 0;
      }
    }
  }

  /** Opens the live file if it is not open. False while disk errors are backing off or the open fails. */
  private async openLive(): Promise<boolean> {
    if (this.fd !== undefined && !(await this.liveFileMoved())) return true;
    if (Date.now() < this.failedUntil) return false;
    try {
      const { fd, size, replaced, cleared } = await openLiveFile(this.options.path);
      if (replaced !== undefined) {
        const message = 'the live file was not a regular file of its own; replaced it with a new one';
        this.errors.error({ path: this.options.path, found: replaced }, message);
      }
      if (cleared !== undefined) {
        const message = 'the live file had set-id or sticky bits, which root writes keep; cleared them';
        this.errors.error({ path: this.options.path, mode: cleared.toString(8) }, message);
      }
      this.fd = fd;
      this.size = size;
      this.openLine = 0;
      this.checkedAt = Date.now();
      return true;
    } catch (err) {
      this.diskError(err);
      return false;
    }
  }

  /**
   * At most once per retry interval: is the open live file still the one at the path? Someone may have deleted it
   * (to free space) or the whole sandbox; writing on would fill a file nobody sees, so it is closed to be reopened.
   */
  private async liveFileMoved(): Promise<boolean> {
    const now = Date.now();
    if (now - this.checkedAt < this.retryDelayMs) return false;
    this.checkedAt = now;
    const [open, current] = await Promise.all([
      fstatAsync(this.fd!).catch(() => undefined),
      statAsync(this.options.path).catch(() => undefined),
    ]);
    if (open !== undefined && current !== undefined && open.ino === current.ino && open.dev === current.dev) return false;
    this.options.log.warn({ path: this.options.path }, 'the live file was deleted or replaced; reopening it');
    await this.closeLive();
    return true;
  }

  private async writeAll(data: Buffer): Promise<boolean> {
    let offset = 0;
    try {
      while (offset < data.length) {
        const { bytesWritten } = await writeAsync(this.fd!, data, offset, data.length - offset);
        offset += bytesWritten;
        this.size += bytesWritten;
        this.stats.bytesWritten += bytesWritten;
      }
      this.openLine = this.openLineAfter(data);
      return true;
    } catch (err) {
      this.diskError(err);
      await this.cutToLastLine(data.subarray(0, offset));
      this.drop(data.subarray(offset));
      await this.closeLive();
      return false;
    }
  }

  /** The bytes of the live file's last line, without a newline yet, once `written` follows what it holds. */
  private openLineAfter(written: Buffer): number {
    const newline = written.lastIndexOf(0x0a);
    return newline < 0 ? this.openLine + written.length : written.length - newline - 1;
  }

  /**
   * After a failed write: cuts the file back to the end of its last whole line, removing the part of a line that a
   * short write (or an earlier partial flush) put there, and counts that part as dropped. If the cut fails too, the
   * file ends inside a line, and the next line written follows it there.
   */
  private async cutToLastLine(written: Buffer): Promise<void> {
    const partial = this.openLineAfter(written);
    this.openLine = 0;
    if (partial === 0) return;
    try {
      const { size } = await fstatAsync(this.fd!);
      await ftruncateAsync(this.fd!, size - partial);
    } catch (err) {
      this.errors.error({ path: this.options.path, err: (err as Error).message }, 'could not cut a partial line');
      return;
    }
    this.size = Math.max(0, this.size - partial);
    this.stats.bytesWritten -= partial;
    this.stats.bytesDropped += partial;
  }

  /** Counts input bytes that never reach the file; if they end inside a line, its rest is dropped too. */
  private drop(data: Buffer): void {
    if (data.length === 0) return;
    this.stats.bytesDropped += data.length;
    this.droppingLineRest = data[data.length - 1] !== 0x0a;
  }

  /** Drops `data` up to the end of the line a disk error cut. Returns where the next line starts. */
  private dropLineRest(data: Buffer): number {
    const newline = data.indexOf(0x0a);
    const end = newline < 0 ? data.length : newline + 1;
    this.stats.bytesDropped += end;
    this.droppingLineRest = newline < 0;
    return end;
  }

  private diskError(err: unknown): void {
    this.stats.diskErrors++;
    this.failedUntil = Date.now() + this.retryDelayMs;
    this.errors.error(
      { path: this.options.path, err: (err as Error).message, bytesDropped: this.stats.bytesDropped },
      'sandbox write failed; dropping output until the disk recovers',
    );
  }

  private async closeLive(): Promise<void> {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) await closeAsync(fd).catch(() => undefined);
  }

  private async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.heldTimer);
    await this.closeLive();
    await this.options.rotation.settle();
    if (this.stats.bytesDropped > 0) {
      this.options.log.error({ path: this.options.path, ...this.stats }, 'sandbox output was dropped');
    }
    this.endedResolve!();
  }
}
