import type { LineBatch } from '../../lines/line-batch.js';
import type { StreamMetadata } from '../../mesos/metadata.js';
import { recordFields } from '../../mesos/record-fields.js';
import {
  containerHeaderSize,
  encodeValue,
  EVENT_TIME_SIZE,
  strHeaderSize,
  writeEventTime,
  writeMapHeader,
  writeStrHeader,
  type PackValue,
} from './msgpack-write.js';

/** `log` (fixstr 3) and `partial_message` / `"true"`, pre-encoded. */
const LOG_KEY = encodeValue('log');
const PARTIAL_PAIR = Buffer.concat([encodeValue('partial_message'), encodeValue('true')]);

/** What every record of one metadata shares, encoded once: its key/value pairs and how many there are. */
interface MetaFields {
  pairs: Buffer;
  count: number;
}

function metaFields(meta: StreamMetadata): MetaFields {
  // The shared record fields, with Docker's fluentd logging driver's name for the stream: `source`.
  const { stream, ...ids } = recordFields(meta);
  const fields: [string, PackValue][] = [['source', stream], ...Object.entries(ids)];
  return { pairs: Buffer.concat(fields.map(([key, value]) => Buffer.concat([encodeValue(key), encodeValue(value)]))), count: fields.length };
}

/**
 * Encodes lines as Forward entries, `[EventTime, {log, source, ...ids, labels}]`, back to back (a
 * MessagePackEventStream). The fields of a metadata are encoded once and copied into each record, so a line costs
 * its copy and a few header bytes, and no object.
 */
export class EntryEncoder {
  private readonly cache = new WeakMap<StreamMetadata, MetaFields>();
  private lastMeta: StreamMetadata | undefined;
  private lastFields: MetaFields | undefined;

  private fieldsOf(meta: StreamMetadata): MetaFields {
    if (meta === this.lastMeta) return this.lastFields!;
    let fields = this.cache.get(meta);
    if (fields === undefined) this.cache.set(meta, (fields = metaFields(meta)));
    this.lastMeta = meta;
    this.lastFields = fields;
    return fields;
  }

  /** The encoded size of the entries of lines `indices` of `batch`. */
  size(batch: LineBatch, indices: readonly number[]): number {
    let size = 0;
    for (const i of indices) {
      const fields = this.fieldsOf(batch.metas[i]);
      const partial = batch.partials[i] === 1;
      const length = batch.utf8(i).length;
      size +=
        1 + EVENT_TIME_SIZE + containerHeaderSize(fields.count + (partial ? 2 : 1)) +
        LOG_KEY.length + strHeaderSize(length) + length + fields.pairs.length + (partial ? PARTIAL_PAIR.length : 0);
    }
    return size;
  }

  /** Writes the entries of lines `indices` into `out` at `at` (room for `size` bytes); returns where they end. */
  write(batch: LineBatch, indices: readonly number[], out: Buffer, at: number): number {
    for (const i of indices) {
      const fields = this.fieldsOf(batch.metas[i]);
      const partial = batch.partials[i] === 1;
      const line = batch.utf8(i);
      out[at++] = 0x92;
      at = writeEventTime(out, at, batch.times[i]);
      at = writeMapHeader(out, at, fields.count + (partial ? 2 : 1));
      at += LOG_KEY.copy(out, at);
      at = writeStrHeader(out, at, line.length);
      out.set(line, at);
      at += line.length;
      at += fields.pairs.copy(out, at);
      if (partial) at += PARTIAL_PAIR.copy(out, at);
    }
    return at;
  }
}
