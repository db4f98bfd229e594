import type { LineBatch } from '../../lines/line-batch.js';
import type { StreamMetadata } from '../../mesos/metadata.js';
import { ByteWriter } from '../../lines/byte-writer.js';
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
  private readonly out = new ByteWriter();
  private readonly parts = new WeakMap<StreamMetadata, StreamParts>();
  private lastTime = NaN;
  private lastStamp: Uint8Array = new Uint8Array(0);

  constructor(private readonly format: FileFormat) {}

  encode(batch: LineBatch, pathOf: (meta: StreamMetadata, time: number) => string): FileRecords[] {
    this.out.reset();
    const runs: { path: string; start: number; ends: number[] }[] = [];
    for (let i = 0; i < batch.count; i++) {
      const meta = batch.metas[i];
      const time = batch.times[i];
      const path = pathOf(meta, time);
      let run = runs.at(-1);
      if (run?.path !== path) runs.push((run = { path, start: this.out.size, ends: [] }));
      const parts = this.partsOf(meta);
      const line = batch.utf8(i);
      const partial = batch.partials[i] === 1;
      if (this.format === 'docker_json') {
        this.out.bytes(RECORD_START);
        this.out.jsonString(line);
        if (!partial) this.out.bytes(ESCAPED_NEWLINE);
        this.out.bytes(parts.afterLine);
        this.out.bytes(this.stamp(time));
        this.out.bytes(parts.afterTime);
      } else {
        this.out.bytes(this.stamp(time));
        this.out.bytes(parts.afterLine);
        this.out.bytes(partial ? CRI_TAGS.partial : CRI_TAGS.full);
        this.out.bytes(line);
        this.out.bytes(NEWLINE);
      }
      run.ends.push(this.out.size - run.start);
    }
    return runs.map(({ path, start, ends }) => ({ path, data: this.out.contents().subarray(start, start + ends.at(-1)!), ends }));
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
}
