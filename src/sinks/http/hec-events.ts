import { join } from 'node:path';
import { ByteWriter } from '../../lines/byte-writer.js';
import type { LineBatch } from '../../lines/line-batch.js';
import type { StreamMetadata } from '../../mesos/metadata.js';
import { flatRecordFields } from '../../mesos/record-fields.js';
import type { Template } from '../template.js';

/** Where HEC takes JSON events, when the url names no path. */
export const HEC_EVENT_PATH = '/services/collector/event';

/** Per line, besides the line's own bytes, about this much JSON around it (time, host, source, fields). */
const EVENT_OVERHEAD = 500;
const PARTIAL_END = Buffer.from(',"partial":"true"}}\n');
const END = Buffer.from('}}\n');

export interface HecMetadata {
  /** Default: the stream's sandbox file (`<sandbox>/stdout`), as a file input would name it. */
  source?: Template;
  /** Default: the token's. */
  sourcetype?: Template;
  /** Default: the token's. */
  index?: Template;
}

/** What every event of one metadata shares, serialized: the members up to `event`'s string, and `fields` without its `}`. */
interface EventParts {
  head: Buffer;
  fields: Buffer;
}

/**
 * Lines as Splunk HEC events for `/services/collector/event`, one JSON object each, newline-separated:
 * `{"time":<epoch seconds.ms>,"host","source","sourcetype"?,"index"?,"event":<line>,"fields":{...}}`, `fields` being
 * the writer's ids and labels as indexed fields (flatRecordFields), plus `partial: "true"` for a line that did not
 * end in a newline.
 */
export class HecEvents {
  private readonly parts = new WeakMap<StreamMetadata, EventParts>();
  /** Lines of one millisecond share the formatted time. */
  private stampTime = Number.NaN;
  private stamp = Buffer.alloc(0);

  constructor(private readonly metadata: HecMetadata) {}

  encode(batch: LineBatch): Buffer {
    const out = new ByteWriter(batch.bytes + batch.count * EVENT_OVERHEAD);
    for (let i = 0; i < batch.count; i++) {
      const { head, fields } = this.partsOf(batch.metas[i]);
      const time = batch.times[i];
      if (time !== this.stampTime) {
        this.stampTime = time;
        this.stamp = Buffer.from(`{"time":${(time / 1000).toFixed(3)},`);
      }
      out.bytes(this.stamp);
      out.bytes(head);
      out.jsonString(batch.utf8(i));
      out.bytes(fields);
      out.bytes(batch.partials[i] === 1 ? PARTIAL_END : END);
    }
    return out.contents();
  }

  private partsOf(meta: StreamMetadata): EventParts {
    let parts = this.parts.get(meta);
    if (parts === undefined) {
      const { source, sourcetype, index } = this.metadata;
      // The templates use no date (parse refuses one), so any time renders the same.
      const head = {
        host: meta.hostname,
        source: source === undefined ? join(meta.sandbox, meta.stream) : source.render(meta, 0),
        ...(sourcetype === undefined ? {} : { sourcetype: sourcetype.render(meta, 0) }),
        ...(index === undefined ? {} : { index: index.render(meta, 0) }),
      };
      parts = {
        head: Buffer.from(`${JSON.stringify(head).slice(1, -1)},"event":"`),
        fields: Buffer.from(`","fields":${JSON.stringify(flatRecordFields(meta)).slice(0, -1)}`),
      };
      this.parts.set(meta, parts);
    }
    return parts;
  }
}
