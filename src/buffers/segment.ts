import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { StreamMetadata } from '../mesos/metadata.js';
import { decodeFrame, findFrameStart, FRAME_HEADER_BYTES, type Frame } from './record-codec.js';

/** Every segment file starts with this: a file without it is not a spool segment (or was torn at creation). */
export const SEGMENT_HEADER = Buffer.from('MLSPOOL\x01', 'latin1');
const SEGMENT_SUFFIX = '.seg';

export const segmentFileName = (seq: number): string => `${String(seq).padStart(16, '0')}${SEGMENT_SUFFIX}`;

/** The sequence number of a segment file name, or undefined for other files. */
export function segmentSeq(name: string): number | undefined {
  const match = /^(\d{16})\.seg$/.exec(name);
  return match === null ? undefined : Number(match[1]);
}

/** Bytes appended and not yet written, with the lines and stream bytes of the line records in them. */
interface PendingChunk {
  data: Buffer;
  lines: number;
  bytes: number;
}

/**
 * One append-only segment file, as the spool sees it. Its logical end (`size`) runs ahead of what is written: what
 * was appended and not yet written is held in `pending`, in order, and reads of that range are served from it. Only
 * the spool's write chain writes, syncs, closes and deletes; readers read through `read`.
 */
export class Segment {
  readonly path: string;
  /** Logical end: written plus pending. */
  size: number;
  written: number;
  synced: number;
  private pending: PendingChunk[] = [];
  pendingBytes = 0;
  /** No more appends: a newer segment exists. */
  sealed: boolean;
  /** Deleted (acknowledged, or dropped): nothing of it is read or written any more. */
  deleted = false;
  /** Found at open: its damage was counted then, and its counts below are of valid records only. */
  readonly recovered: boolean;
  /** Line records in it (past the acknowledged offset for a recovered one), and their stream bytes. */
  lines = 0;
  bytes = 0;
  /** Of those, taken (read for a batch). */
  takenLines = 0;
  takenBytes = 0;
  /** Batches that took lines of it and are not yet acknowledged. */
  outstanding = 0;
  /** The reader went past its end: every line in it was taken, skipped or dropped. */
  exhausted = false;
  /** Everything before this offset is acknowledged. */
  ackedOffset: number;
  /** The writer's metadata references in this segment: a metadata record is written once per stream metadata. */
  readonly refs = new Map<StreamMetadata, number>();
  handle: FileHandle | undefined;
  private opening: Promise<FileHandle> | undefined;

  constructor(
    dir: string,
    readonly seq: number,
    found?: { size: number; lines: number; bytes: number; ackedOffset: number },
  ) {
    this.path = join(dir, segmentFileName(seq));
    this.recovered = found !== undefined;
    this.sealed = this.recovered;
    this.size = found?.size ?? 0;
    this.written = this.size;
    this.synced = this.size;
    this.lines = found?.lines ?? 0;
    this.bytes = found?.bytes ?? 0;
    this.ackedOffset = found?.ackedOffset ?? 0;
    if (found === undefined) this.append({ data: SEGMENT_HEADER, lines: 0, bytes: 0 });
  }

  append(chunk: PendingChunk): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.data.length;
    this.size += chunk.data.length;
  }

  /** The file, opened once: created by the first write of a new segment, read-only for a recovered one. */
  file(): Promise<FileHandle> {
    if (this.handle !== undefined) return Promise.resolve(this.handle);
    this.opening ??= open(this.path, this.recovered ? 'r' : 'wx+').then((handle) => (this.handle = handle));
    this.opening.catch(() => (this.opening = undefined));
    return this.opening;
  }

  /** Writes what is pending (called by the write chain only). Throws on a write error; what was written stays. */
  async writePending(maxBytes: number): Promise<void> {
    const handle = await this.file();
    while (this.pending.length > 0 && !this.deleted) {
      let n = 0;
      let count = 0;
      while (count < this.pending.length && (count === 0 || n + this.pending[count].data.length <= maxBytes)) {
        n += this.pending[count++].data.length;
      }
      const data = count === 1 ? this.pending[0].data : Buffer.concat(this.pending.slice(0, count).map((c) => c.data), n);
      for (let at = 0; at < n; ) {
        const { bytesWritten } = await handle.write(data, at, n - at, this.written + at);
        at += bytesWritten;
      }
      this.written += n;
      this.pendingBytes -= n;
      this.pending.splice(0, count);
    }
  }

  /** Lines and stream bytes appended and not written, in chunks starting at or after `from`. */
  unwritten(from: number): { lines: number; bytes: number } {
    let at = this.written;
    const total = { lines: 0, bytes: 0 };
    for (const chunk of this.pending) {
      if (at >= from) {
        total.lines += chunk.lines;
        total.bytes += chunk.bytes;
      }
      at += chunk.data.length;
    }
    return total;
  }

  /** Drops what is pending (the segment is deleted, or the spool closes with a failed disk). */
  forgetPending(): void {
    this.size = this.written;
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Reads [position, position + length) of the segment, clipped at its end: pending bytes from memory. */
  async read(into: Buffer, position: number, length: number): Promise<number> {
    const end = Math.min(position + length, this.size);
    const fileEnd = Math.min(end, this.written);
    // Memory first, synchronously: a write that completes during the file read below moves `written` and `pending`.
    let at = this.written;
    for (const chunk of this.pending) {
      const from = Math.max(at, position, fileEnd);
      const to = Math.min(at + chunk.data.length, end);
      if (from < to) chunk.data.copy(into, from - position, from - at, to - at);
      at += chunk.data.length;
      if (at >= end) break;
    }
    if (fileEnd > position) {
      const handle = await this.file();
      for (let at = position; at < fileEnd; ) {
        const { bytesRead } = await handle.read(into, at - position, fileEnd - at, at);
        if (bytesRead === 0) return at - position;
        at += bytesRead;
      }
    }
    return Math.max(0, end - position);
  }

  async close(): Promise<void> {
    const handle = this.handle ?? (await this.opening?.catch(() => undefined));
    this.handle = undefined;
    this.opening = undefined;
    await handle?.close().catch(() => undefined);
  }
}

/** What a FrameReader finds: a valid record, or a damaged range it skipped. */
export type ReadItem =
  | { kind: 'frame'; at: number; frame: Extract<Frame, { kind: 'meta' | 'line' }> }
  | { kind: 'damaged'; at: number; bytes: number; why: string };

/** Reads at most this much of a segment at a time; one larger record is read into a buffer of its own. */
export const READ_CHUNK_BYTES = 256 * 1024;

/**
 * Walks the records of a byte range in bounded chunks, never a whole segment in memory. A record that is torn (cut
 * short by the range's end) or damaged (bad magic, impossible length, CRC mismatch) is reported as a damaged range,
 * and reading goes on at the next position where a valid record starts. A line record's bytes are a view into the
 * reader's chunk, valid until the next call.
 */
export class FrameReader {
  private chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  private chunkStart = 0;
  private chunkBytes = 0;

  constructor(
    private readonly source: (into: Buffer, position: number, length: number) => Promise<number>,
    public position: number,
    /** The range's end; it may grow (a segment being appended to). */
    private readonly end: () => number,
  ) {}

  async next(): Promise<ReadItem | undefined> {
    const at = this.position;
    if (at >= this.end()) return undefined;
    const frame = await this.frameAt(at);
    if (frame.kind === 'meta' || frame.kind === 'line') {
      this.position = at + frame.bytes;
      return { kind: 'frame', at, frame };
    }
    let next = at + 1;
    for (;;) {
      next = await this.findMagic(next);
      if (next < 0) {
        next = this.end();
        break;
      }
      if ((await this.frameAt(next)).kind !== 'bad') break;
      next++;
    }
    this.position = next;
    return { kind: 'damaged', at, bytes: next - at, why: frame.kind === 'bad' ? frame.why : 'cut short' };
  }

  /** The frame at `position`; one that runs past the range's end is bad (torn). */
  private async frameAt(position: number): Promise<Frame> {
    const end = this.end();
    await this.fill(position, FRAME_HEADER_BYTES);
    let frame = decodeFrame(this.chunk, position - this.chunkStart, this.chunkBytes);
    if (frame.kind !== 'short') return frame;
    if (position + frame.need > end) return { kind: 'bad', why: 'cut short' };
    await this.fill(position, frame.need);
    frame = decodeFrame(this.chunk, position - this.chunkStart, this.chunkBytes);
    return frame.kind === 'short' ? { kind: 'bad', why: 'cut short' } : frame;
  }

  private async findMagic(from: number): Promise<number> {
    for (const end = this.end(); from < end; ) {
      await this.fill(from, Math.min(READ_CHUNK_BYTES, end - from));
      const found = findFrameStart(this.chunk, from - this.chunkStart, this.chunkBytes);
      if (found >= 0) return this.chunkStart + found;
      // Past the end, or the file is shorter than the segment was thought to be.
      if (this.chunkStart + this.chunkBytes >= end || this.chunkBytes < 4) return -1;
      // The magic may straddle the chunk's end.
      from = Math.max(from + 1, this.chunkStart + this.chunkBytes - 3);
    }
    return -1;
  }

  /** Makes the chunk hold [position, position + need) (or up to the end), reading from `position` if it does not. */
  private async fill(position: number, need: number): Promise<void> {
    const want = Math.min(need, this.end() - position);
    if (position >= this.chunkStart && position + want <= this.chunkStart + this.chunkBytes) return;
    if (need > this.chunk.length) this.chunk = Buffer.allocUnsafe(need);
    else if (this.chunk.length > READ_CHUNK_BYTES && need <= READ_CHUNK_BYTES) this.chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    this.chunkStart = position;
    this.chunkBytes = 0;
    this.chunkBytes = await this.source(this.chunk, position, Math.min(this.chunk.length, this.end() - position));
  }
}
