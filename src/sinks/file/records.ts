import type { LineBatch } from '../../lines/line-batch.js';
import type { StreamMetadata } from '../../mesos/metadata.js';
import { flatRecordFields } from '../../mesos/record-fields.js';

export const FORMATS = ['docker_json', 'cri'] as const;
export type FileFormat = (typeof FORMATS)[number];

/** A run of records for one file: `data[ends[k-1], ends[k])` is record k (whole lines, each ending in a newline). */
export interface FileRecords {
  path: string;
  data: Buffer;
  ends: number[];
}

const ascii = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'latin1'));
const RECORD_START = ascii('{"log":"');
const ESCAPED_NEWLINE = ascii('\\n');
const NEWLINE = ascii('\n');
const CRI_TAGS = { partial: ascii('P '), full: ascii('F ') };
/** Below this many bytes a copy by hand beats TypedArray.set. */
const SMALL_COPY = 32;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** JSON's two-character escapes. */
const SHORT_ESCAPES: Record<number, string> = {
  0x08: '\\b',
  0x09: '\\t',
  0x0a: '\\n',
  0x0c: '\\f',
  0x0d: '\\r',
  [QUOTE]: '\\"',
  [BACKSLASH]: '\\\\',
};
/** What a byte becomes inside a JSON string, for those that cannot stand for themselves. */
const JSON_ESCAPES: (Uint8Array | undefined)[] = Array.from({ length: 256 }, (_, byte) => {
  if (SHORT_ESCAPES[byte] !== undefined) return ascii(SHORT_ESCAPES[byte]);
  return byte < 0x20 ? ascii(`\\u${byte.toString(16).padStart(4, '0')}`) : undefined;
});
/** 1 for the bytes JSON_ESCAPES has: a typed array is the cheaper lookup in the per-byte loop. */
const NEEDS_ESCAPE = Uint8Array.from(JSON_ESCAPES, (escape) => (escape === undefined ? 0 : 1));

/** What each record of a stream repeats, encoded once per metadata object. */
interface StreamParts {
  /** docker_json: `","stream":"stdout","time":"`; cri: ` stdout `. */
  afterLine: Uint8Array;
  /** docker_json: `","attrs":{...}}` plus the newline. */
  afterTime: Uint8Array;
}

/**
 * Encodes a batch's lines as records, in Docker's json-file format or the CRI log format, grouped into runs of
 * consecutive lines that go to the same file. One growing buffer serves every batch: the runs are views of it,
 * valid until the next `encode`.
 */
export class RecordEncoder {
  private out = Buffer.allocUnsafe(1 << 16);
  private at = 0;
  private readonly parts = new WeakMap<StreamMetadata, StreamParts>();
  private lastTime = NaN;
  private lastStamp: Uint8Array = new Uint8Array(0);

  constructor(private readonly format: FileFormat) {}

  encode(batch: LineBatch, pathOf: (meta: StreamMetadata, time: number) => string): FileRecords[] {
    this.at = 0;
    const runs: { path: string; start: number; ends: number[] }[] = [];
    for (let i = 0; i < batch.count; i++) {
      const meta = batch.metas[i];
      const time = batch.times[i];
      const path = pathOf(meta, time);
      let run = runs.at(-1);
      if (run?.path !== path) runs.push((run = { path, start: this.at, ends: [] }));
      const parts = this.partsOf(meta);
      const line = batch.utf8(i);
      const partial = batch.partials[i] === 1;
      if (this.format === 'docker_json') {
        this.putBytes(RECORD_START);
        this.putJsonString(line);
        if (!partial) this.putBytes(ESCAPED_NEWLINE);
        this.putBytes(parts.afterLine);
        this.putBytes(this.stamp(time));
        this.putBytes(parts.afterTime);
      } else {
        this.putBytes(this.stamp(time));
        this.putBytes(parts.afterLine);
        this.putBytes(partial ? CRI_TAGS.partial : CRI_TAGS.full);
        this.putBytes(line);
        this.putBytes(NEWLINE);
      }
      run.ends.push(this.at - run.start);
    }
    return runs.map(({ path, start, ends }) => ({ path, data: this.out.subarray(start, start + ends.at(-1)!), ends }));
  }

  /**
   * RFC 3339 with nine fractional digits in UTC, as Docker's json-file writes it; CRI readers take any number of
   * digits (Go's RFC3339Nano), so both formats use it.
   */
  private stamp(time: number): Uint8Array {
    if (time === this.lastTime) return this.lastStamp;
    const ms = Math.floor(time);
    const nanos = String(Math.round((time - ms) * 1e6)).padStart(6, '0');
    this.lastTime = time;
    this.lastStamp = ascii(`${new Date(ms).toISOString().slice(0, 23)}${nanos}Z`);
    return this.lastStamp;
  }

  private partsOf(meta: StreamMetadata): StreamParts {
    let parts = this.parts.get(meta);
    if (parts === undefined) {
      if (this.format === 'docker_json') {
        // Docker's own `attrs` (log-opt labels and env) is a map of strings, and Filebeat decodes it as one.
        const { stream: _, ...attrs } = flatRecordFields(meta);
        parts = {
          afterLine: ascii(`","stream":"${meta.stream}","time":"`),
          afterTime: new Uint8Array(Buffer.from(`","attrs":${JSON.stringify(attrs)}}\n`)),
        };
      } else {
        parts = { afterLine: ascii(` ${meta.stream} `), afterTime: new Uint8Array(0) };
      }
      this.parts.set(meta, parts);
    }
    return parts;
  }

  /** A line's UTF-8 bytes as the inside of a JSON string: `"`, `\\` and control characters escaped. */
  private putJsonString(line: Uint8Array): void {
    let clean = 0;
    while (clean < line.length && NEEDS_ESCAPE[line[clean]] === 0) clean++;
    if (clean === line.length) return this.putBytes(line);
    // Six bytes at most per byte (\u00XX).
    this.reserve(line.length * 6);
    const out = this.out;
    out.set(line.subarray(0, clean), this.at);
    let at = this.at + clean;
    for (let i = clean; i < line.length; i++) {
      const byte = line[i];
      if (NEEDS_ESCAPE[byte] === 0) {
        out[at++] = byte;
        continue;
      }
      const escape = JSON_ESCAPES[byte]!;
      for (let k = 0; k < escape.length; k++) out[at++] = escape[k];
    }
    this.at = at;
  }

  private putBytes(bytes: Uint8Array): void {
    const length = bytes.length;
    this.reserve(length);
    const { out, at } = this;
    if (length < SMALL_COPY) for (let i = 0; i < length; i++) out[at + i] = bytes[i];
    else out.set(bytes, at);
    this.at = at + length;
  }

  private reserve(bytes: number): void {
    if (this.at + bytes <= this.out.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.at + bytes));
    this.out.copy(grown, 0, 0, this.at);
    this.out = grown;
  }
}
