import type { LineBatch } from '../../lines/line-batch.js';
import type { StreamMetadata } from '../../mesos/metadata.js';
import { recordFields } from '../../mesos/record-fields.js';
import { lineJson } from './line-text.js';

/**
 * Each line as one JSON object: `time` (RFC 3339, ms, UTC), `message`, then recordFields (stream, ids, labels), and
 * `partial: true` when the line did not end in a newline. The members of a metadata are serialized once.
 */
export class JsonRecords {
  /** Per metadata object: a stream's lines share one until agent enrichment replaces it. */
  private readonly members = new WeakMap<StreamMetadata, string>();

  /** Line i's record. */
  record(batch: LineBatch, i: number): string {
    const meta = batch.metas[i];
    let members = this.members.get(meta);
    if (members === undefined) {
      members = JSON.stringify(recordFields(meta)).slice(1, -1);
      this.members.set(meta, members);
    }
    const time = new Date(batch.times[i]).toISOString();
    return `{"time":"${time}","message":${lineJson(batch, i)},${members}${batch.partials[i] === 1 ? ',"partial":true' : ''}}`;
  }

  /** application/x-ndjson: one record per line, each ending in a newline. */
  ndjson(batch: LineBatch): Buffer {
    let body = '';
    for (let i = 0; i < batch.count; i++) body += `${this.record(batch, i)}\n`;
    return Buffer.from(body, 'utf8');
  }

  /** application/json: one array of records. */
  jsonArray(batch: LineBatch): Buffer {
    const records: string[] = new Array(batch.count);
    for (let i = 0; i < batch.count; i++) records[i] = this.record(batch, i);
    return Buffer.from(`[${records.join(',')}]`, 'utf8');
  }
}
