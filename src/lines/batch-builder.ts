import { isUtf8 } from 'node:buffer';
import type { StreamMetadata } from '../mesos/metadata.js';
import { LineBatch } from './line-batch.js';

/**
 * Assembles one LineBatch from lines taken off one or more buffers (the queues of a shared sink's streams): each
 * buffer copies its bytes in after the previous one's and pushes its lines' positions, arrival times and metadata.
 *
 * With `reused`, the bytes go into that memory while they fit (else into a buffer of the batch's own), and the
 * arrays are views of this builder's scratch: the batch is then valid only until the next `reset`.
 */
export class BatchBuilder {
  private data: Buffer;
  private used = 0;
  private starts = new Uint32Array(64);
  private stops = new Uint32Array(64);
  private partials = new Uint8Array(64);
  private times = new Float64Array(64);
  private metas: StreamMetadata[] = [];
  private records = 0;
  private newlines = 0;
  private valid = true;

  constructor(private readonly reused?: Buffer) {
    this.data = reused ?? Buffer.alloc(0);
  }

  /** Lines pushed so far. */
  get count(): number {
    return this.records;
  }

  /** Stream bytes copied in so far. */
  get bytes(): number {
    return this.used;
  }

  /** The bytes are still in the reused memory (nothing outgrew it). */
  get inReusedMemory(): boolean {
    return this.reused !== undefined && this.data === this.reused;
  }

  /** Starts a new batch (in the reused memory, if any). */
  reset(): void {
    this.data = this.reused ?? Buffer.alloc(0);
    this.used = 0;
    this.records = 0;
    this.newlines = 0;
    this.valid = true;
    this.metas = [];
  }

  /** Room for `size` more stream bytes at the end; the caller copies them in before it pushes their lines. */
  space(size: number): Buffer {
    const end = this.used + size;
    if (end > this.data.length) {
      const grown = Buffer.allocUnsafe(Math.max(end, this.data.length * 2));
      this.data.copy(grown, 0, 0, this.used);
      this.data = grown;
    }
    const space = this.data.subarray(this.used, end);
    this.used = end;
    return space;
  }

  /** A line at [start, stop) of the batch's bytes. */
  push(start: number, stop: number, partial: 0 | 1, time: number, meta: StreamMetadata): void {
    if (this.records === this.starts.length) this.grow();
    this.starts[this.records] = start;
    this.stops[this.records] = stop;
    this.partials[this.records] = partial;
    this.times[this.records] = time;
    this.metas.push(meta);
    this.records++;
  }

  /**
   * One buffer's part is in: `bytes` (what it copied) hold `lines` stream lines. Its UTF-8 is checked on its own, as
   * two parts' broken characters must not make a valid one.
   */
  endPart(bytes: Buffer, lines: number): void {
    this.newlines += lines;
    if (this.valid) this.valid = isUtf8(bytes);
  }

  build(): LineBatch {
    const n = this.records;
    const own = this.reused === undefined;
    return new LineBatch(
      this.data.subarray(0, this.used),
      own ? this.starts.slice(0, n) : this.starts.subarray(0, n),
      own ? this.stops.slice(0, n) : this.stops.subarray(0, n),
      own ? this.partials.slice(0, n) : this.partials.subarray(0, n),
      own ? this.times.slice(0, n) : this.times.subarray(0, n),
      this.metas,
      this.valid,
      this.newlines,
    );
  }

  private grow(): void {
    const size = this.records * 2;
    const grow = <T extends Uint32Array | Uint8Array | Float64Array>(old: T, made: T): T => {
      made.set(old);
      return made;
    };
    this.starts = grow(this.starts, new Uint32Array(size));
    this.stops = grow(this.stops, new Uint32Array(size));
    this.partials = grow(this.partials, new Uint8Array(size));
    this.times = grow(this.times, new Float64Array(size));
  }
}
