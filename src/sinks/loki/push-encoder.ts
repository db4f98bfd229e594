import type { LineBatch } from '../../lines/line-batch.js';
import type { StreamMetadata } from '../../mesos/metadata.js';
import { flatRecordFields } from '../../mesos/record-fields.js';
import { lineJson } from '../http/line-text.js';
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

/** What every entry of one metadata shares: its stream's labels (serialized: also the stream's key) and metadata. */
interface StreamParts {
  labels: string;
  /** `,{...}` after the line, or empty. */
  metadata: string;
  /** The same with `partial: "true"` added. */
  partialMetadata: string;
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
    const streams = new Map<string, string[]>();
    for (let i = 0; i < batch.count; i++) {
      const parts = this.partsOf(batch.metas[i]);
      let values = streams.get(parts.labels);
      if (values === undefined) streams.set(parts.labels, (values = []));
      const metadata = batch.partials[i] === 1 ? parts.partialMetadata : parts.metadata;
      values.push(`["${this.clock.stamp(parts.labels, batch.times[i])}",${lineJson(batch, i)}${metadata}]`);
    }
    let body = '{"streams":[';
    let first = true;
    for (const [labels, values] of streams) {
      body += `${first ? '' : ','}{"stream":${labels},"values":[${values.join(',')}]}`;
      first = false;
    }
    return Buffer.from(`${body}]}`, 'utf8');
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
      const metadata = (extra: Record<string, string>): string =>
        this.options.structuredMetadata ? `,${JSON.stringify({ ...fields, ...extra })}` : '';
      parts = { labels: JSON.stringify(labels), metadata: metadata({}), partialMetadata: metadata({ partial: 'true' }) };
      this.parts.set(meta, parts);
    }
    return parts;
  }
}
