import { ByteWriter } from '../../lines/byte-writer.js';
import type { LineBatch } from '../../lines/line-batch.js';
import type { StreamMetadata } from '../../mesos/metadata.js';
import { flatRecordFields } from '../../mesos/record-fields.js';
import { EntryClock } from './entry-clock.js';

/** Where Loki takes pushes, when the url names no path. */
export const LOKI_PUSH_PATH = '/loki/api/v1/push';

/** One stream label: its Loki name, and the flatRecordFields field it takes its value from. */
export interface LabelSource {
  name: string;
  field: string;
}

export interface PushEncoderOptions {
  /** Stream labels from the line's metadata; a field the stream does not have is left out. */
  labels: LabelSource[];
  /** Stream labels with fixed values. */
  staticLabels: Record<string, string>;
  /** The fields not used as labels go with each entry as structured metadata (Loki 3); else they are not sent. */
  structuredMetadata: boolean;
}

/** Per line, besides the line's own bytes, about this much JSON around it (timestamp, metadata). */
const ENTRY_OVERHEAD = 300;
const COMMA = Buffer.from(',');
const END_STREAM = Buffer.from(']}');

/** What every entry of one metadata shares: its stream's labels (serialized: also the stream's key) and metadata. */
interface StreamParts {
  labels: string;
  /** What follows the line's string: `",{...}]`, or just `"]`. */
  metadata: Buffer;
  /** The same with `partial: "true"` added. */
  partialMetadata: Buffer;
}

/**
 * A batch as one `/loki/api/v1/push` JSON body: `{"streams":[{"stream":{labels},"values":[["<ns>","<line>",{metadata}],
 * ...]}, ...]}`. Lines are grouped by their label set, in arrival order within each; their timestamps come from an
 * EntryClock, so they increase strictly per stream.
 */
export class PushEncoder {
  private readonly parts = new WeakMap<StreamMetadata, StreamParts>();
  private readonly clock = new EntryClock();

  constructor(private readonly options: PushEncoderOptions) {}

  encode(batch: LineBatch): Buffer {
    // The lines of each label set, in arrival order, each with its own writer's parts (writers may share labels).
    const streams = new Map<string, { lines: number[]; parts: StreamParts[] }>();
    for (let i = 0; i < batch.count; i++) {
      const parts = this.partsOf(batch.metas[i]);
      let stream = streams.get(parts.labels);
      if (stream === undefined) streams.set(parts.labels, (stream = { lines: [], parts: [] }));
      stream.lines.push(i);
      stream.parts.push(parts);
    }
    const out = new ByteWriter(batch.bytes + batch.count * ENTRY_OVERHEAD);
    out.bytes(Buffer.from('{"streams":['));
    let firstStream = true;
    for (const [labels, { parts, lines }] of streams) {
      if (!firstStream) out.bytes(COMMA);
      firstStream = false;
      out.bytes(Buffer.from(`{"stream":${labels},"values":[`));
      for (let n = 0; n < lines.length; n++) {
        const i = lines[n];
        out.bytes(Buffer.from(`${n === 0 ? '' : ','}["${this.clock.stamp(labels, batch.times[i])}","`, 'latin1'));
        out.jsonString(batch.utf8(i));
        out.bytes(batch.partials[i] === 1 ? parts[n].partialMetadata : parts[n].metadata);
      }
      out.bytes(END_STREAM);
    }
    out.bytes(END_STREAM);
    return out.contents();
  }

  private partsOf(meta: StreamMetadata): StreamParts {
    let parts = this.parts.get(meta);
    if (parts === undefined) {
      const fields = flatRecordFields(meta);
      const labels: Record<string, string> = { ...this.options.staticLabels };
      for (const { name, field } of this.options.labels) {
        const value = fields[field];
        if (value !== undefined && value !== '') labels[name] = value;
        delete fields[field];
      }
      const metadata = (extra: Record<string, string>): Buffer =>
        Buffer.from(this.options.structuredMetadata ? `",${JSON.stringify({ ...fields, ...extra })}]` : '"]');
      parts = { labels: JSON.stringify(labels), metadata: metadata({}), partialMetadata: metadata({ partial: 'true' }) };
      this.parts.set(meta, parts);
    }
    return parts;
  }
}
