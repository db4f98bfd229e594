import { ByteWriter } from '../../lines/byte-writer.js';
import type { LineBatch } from '../../lines/line-batch.js';
import type { StreamMetadata } from '../../mesos/metadata.js';
import { recordFields } from '../../mesos/record-fields.js';

/** Per line, besides the line's own bytes, about this much JSON around it (time, keys, ids). */
const RECORD_OVERHEAD = 400;
const MESSAGE = Buffer.from('","message":"');
const PARTIAL_END = Buffer.from(',"partial":true}');
const END = Buffer.from('}');
const NEWLINE = Buffer.from('\n');
const COMMA = Buffer.from(',');

/**
 * Each line as one JSON object: `time` (RFC 3339, ms, UTC), `message`, then recordFields (stream, ids, labels), and
 * `partial: true` when the line did not end in a newline. The members of a metadata are serialized once.
 */
export class JsonRecords {
  /** Per metadata object (a stream's lines share one until agent enrichment replaces it): `",stream":...` without `}`. */
  private readonly members = new WeakMap<StreamMetadata, Buffer>();
  /** Lines of one millisecond share the formatted time. */
  private stampTime = Number.NaN;
  private stamp = Buffer.alloc(0);

  /** application/x-ndjson: one record per line, each ending in a newline. */
  ndjson(batch: LineBatch): Buffer {
    const out = new ByteWriter(batch.bytes + batch.count * RECORD_OVERHEAD);
    for (let i = 0; i < batch.count; i++) {
      this.record(out, batch, i);
      out.bytes(NEWLINE);
    }
    return out.contents();
  }

  /** application/json: one array of records. */
  jsonArray(batch: LineBatch): Buffer {
    const out = new ByteWriter(batch.bytes + batch.count * RECORD_OVERHEAD);
    out.bytes(Buffer.from('['));
    for (let i = 0; i < batch.count; i++) {
      if (i > 0) out.bytes(COMMA);
      this.record(out, batch, i);
    }
    out.bytes(Buffer.from(']'));
    return out.contents();
  }

  private record(out: ByteWriter, batch: LineBatch, i: number): void {
    const time = batch.times[i];
    if (time !== this.stampTime) {
      this.stampTime = time;
      this.stamp = Buffer.from(`{"time":"${new Date(time).toISOString()}`);
    }
    out.bytes(this.stamp);
    out.bytes(MESSAGE);
    out.jsonString(batch.utf8(i));
    out.bytes(this.membersOf(batch.metas[i]));
    out.bytes(batch.partials[i] === 1 ? PARTIAL_END : END);
  }

  private membersOf(meta: StreamMetadata): Buffer {
    let members = this.members.get(meta);
    if (members === undefined) {
      members = Buffer.from(`",${JSON.stringify(recordFields(meta)).slice(1, -1)}`);
      this.members.set(meta, members);
    }
    return members;
  }
}
