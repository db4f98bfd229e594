import type { StreamMetadata } from '../mesos/metadata.js';
import { asValidUtf8, ChunkLine, type LogRecord } from './record.js';

/**
 * Lines taken for one send, as a struct of arrays over one copy of their bytes: line i is data[starts[i], stops[i]).
 * No object per line: at full speed, one record object and one Buffer view per line were most of a forwarding
 * helper's GC time. Sinks that want objects (journald, tests) ask for `records`.
 */
export class LineBatch {
  /** A plain Uint8Array over `data`: its subarray() is V8's builtin, far cheaper than Buffer's per line. */
  private readonly view: Uint8Array;

  constructor(
    /** The stream bytes taken, newlines (and CRs) included. */
    readonly data: Buffer,
    readonly starts: Uint32Array,
    readonly stops: Uint32Array,
    /** 1 when the line did not end with a newline: a cut long line, or a last line flushed after idle. */
    readonly partials: Uint8Array,
    /** Arrival time of each line, ms since the epoch. */
    readonly times: Float64Array,
    /** Who wrote each line. */
    readonly metas: StreamMetadata[],
    /** `data` is valid UTF-8, so each line is too (cuts fall between characters). */
    readonly validUtf8: boolean,
    /** Newlines consumed (plus one for a last line without newline at EOF): what `linesSent` grows by. */
    readonly lines: number,
  ) {
    this.view = new Uint8Array(data.buffer, data.byteOffset, data.length);
  }

  get count(): number {
    return this.starts.length;
  }

  /** Stream bytes consumed. */
  get bytes(): number {
    return this.data.length;
  }

  /** Line i's raw bytes (a view into `data`). */
  raw(i: number): Uint8Array {
    return this.view.subarray(this.starts[i], this.stops[i]);
  }

  /** Line i as valid UTF-8: the raw bytes when they already are, else with U+FFFD replacements. */
  utf8(i: number): Uint8Array {
    return asValidUtf8(this.raw(i), this.validUtf8);
  }

  /** The lines as record objects. */
  get records(): LogRecord[] {
    const { starts, stops } = this;
    const records: LogRecord[] = new Array(this.count);
    for (let i = 0; i < records.length; i++) {
      records[i] = new ChunkLine(this.data, starts[i], stops[i] - starts[i], this.partials[i] === 1, this.times[i], this.metas[i], this.validUtf8);
    }
    return records;
  }
}
