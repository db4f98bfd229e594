import { join } from 'node:path';
import type { LineBatch } from '../../lines/line-batch.js';
import type { StreamMetadata } from '../../mesos/metadata.js';
import { flatRecordFields } from '../../mesos/record-fields.js';
import type { Template } from '../../mesos/template.js';
import { lineJson } from './line-text.js';

/** Where HEC takes JSON events, when the url names no path. */
export const HEC_EVENT_PATH = '/services/collector/event';

export interface HecMetadata {
  /** Default: the stream's sandbox file (`<sandbox>/stdout`), as a file input would name it. */
  source?: Template;
  /** Default: the token's. */
  sourcetype?: Template;
  /** Default: the token's. */
  index?: Template;
}

/** What every event of one metadata shares, serialized: the members before `event`, and `fields` without its `}`. */
interface EventParts {
  head: string;
  fields: string;
}

/**
 * Lines as Splunk HEC events for `/services/collector/event`, one JSON object each, newline-separated:
 * `{"time":<epoch seconds.ms>,"host","source","sourcetype"?,"index"?,"event":<line>,"fields":{...}}`, `fields` being
 * the writer's ids and labels as indexed fields (flatRecordFields), plus `partial: "true"` for a line that did not
 * end in a newline.
 */
export class HecEvents {
  private readonly parts = new WeakMap<StreamMetadata, EventParts>();

  constructor(private readonly metadata: HecMetadata) {}

  encode(batch: LineBatch): Buffer {
    let body = '';
    for (let i = 0; i < batch.count; i++) {
      const { head, fields } = this.partsOf(batch.metas[i]);
      const time = (batch.times[i] / 1000).toFixed(3);
      const partial = batch.partials[i] === 1 ? ',"partial":"true"' : '';
      body += `{"time":${time},${head},"event":${lineJson(batch, i)},"fields":${fields}${partial}}}\n`;
    }
    return Buffer.from(body, 'utf8');
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
      parts = { head: JSON.stringify(head).slice(1, -1), fields: JSON.stringify(flatRecordFields(meta)).slice(0, -1) };
      this.parts.set(meta, parts);
    }
    return parts;
  }
}
