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

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const HEX = '0123456789abcdef';
/** JSON's short escapes; other control characters become \u00XX. */
const SHORT_ESCAPES: Record<number, string> = { 0x08: '\\b', 0x09: '\\t', 0x0a: '\\n', 0x0c: '\\f', 0x0d: '\\r' };

/** What each record of a stream repeats, encoded once per metadata object. */
interface StreamParts {
  /** docker_json: `","stream":"stdout","time":"`; cri: ` stdout `. */
  afterLine: Buffer;
  /** docker_json: `","attrs":{...}}` plus the newline. */
  afterTime: Buffer;
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
  private lastStamp = '';

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
        this.put('{"log":"');
        this.putJsonString(line);
        if (!partial) this.put('\\n');
        this.putBytes(parts.afterLine);
        this.put(this.stamp(time));
        this.putBytes(parts.afterTime);
      } else {
        this.put(this.stamp(time));
        this.putBytes(parts.afterLine);
        this.put(partial ? 'P ' : 'F ');
        this.putBytes(line);
        this.put('\n');
      }
      run.ends.push(this.at - run.start);
    }
    return runs.map(({ path, start, ends }) => ({ path, data: this.out.subarray(start, start + ends.at(-1)!), ends }));
  }

  /**
   * RFC 3339 with nine fractional digits in UTC, as Docker's json-file writes it; CRI readers take any number of
   * digits (Go's RFC3339Nano), so both formats use it.
   */
  private stamp(time: number): string {
    if (time === this.lastTime) return this.lastStamp;
    const ms = Math.floor(time);
    const nanos = String(Math.round((time - ms) * 1e6)).padStart(6, '0');
    this.lastTime = time;
    this.lastStamp = `${new Date(ms).toISOString().slice(0, 23)}${nanos}Z`;
    return this.lastStamp;
  }

  private partsOf(meta: StreamMetadata): StreamParts {
    let parts = this.parts.get(meta);
    if (parts === undefined) {
      if (this.format === 'docker_json') {
        // Docker's own `attrs` (log-opt labels and env) is a map of strings, and Filebeat decodes it as one.
        const { stream: _, ...attrs } = flatRecordFields(meta);
        parts = {
          afterLine: Buffer.from(`","stream":"${meta.stream}","time":"`),
          afterTime: Buffer.from(`","attrs":${JSON.stringify(attrs)}}\n`),
        };
      } else {
        parts = { afterLine: Buffer.from(` ${meta.stream} `), afterTime: Buffer.alloc(0) };
      }
      this.parts.set(meta, parts);
    }
    return parts;
  }

  /** A line's UTF-8 bytes as the inside of a JSON string: `"`, `\` and control characters escaped. */
  private putJsonString(line: Uint8Array): void {
    let from = 0;
    for (let i = 0; i < line.length; i++) {
      const byte = line[i];
      if (byte >= 0x20 && byte !== QUOTE && byte !== BACKSLASH) continue;
      this.putBytes(line.subarray(from, i));
      from = i + 1;
      if (byte === QUOTE) this.put('\\"');
      else if (byte === BACKSLASH) this.put('\\\\');
      else this.put(SHORT_ESCAPES[byte] ?? `\\u00${HEX[byte >> 4]}${HEX[byte & 15]}`);
    }
    this.putBytes(line.subarray(from));
  }

  private put(ascii: string): void {
    this.reserve(ascii.length);
    this.at += this.out.write(ascii, this.at, 'latin1');
  }

  private putBytes(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.out.set(bytes, this.at);
    this.at += bytes.length;
  }

  private reserve(bytes: number): void {
    if (this.at + bytes <= this.out.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.at + bytes));
    this.out.copy(grown, 0, 0, this.at);
    this.out = grown;
  }
}
