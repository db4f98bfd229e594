// RecordBatch v2 (magic 2, Kafka 0.11+), as kafka.apache.org/documentation/#recordbatch lays it out: a header, then
// the records, compressed as a whole; a CRC-32C covers everything from the attributes on.
import { gzip } from '../../../lazy-builtins.js';
import { lz4Frame } from './lz4.js';
import { varintSize, Writer } from './wire.js';


export const CODECS = ['none', 'gzip', 'lz4'] as const;
export type Codec = (typeof CODECS)[number];
/** The attributes' compression bits per codec. */
const CODEC_BITS: Record<Codec, number> = { none: 0, gzip: 1, lz4: 3 };

/** One record as the batch carries it. */
export interface BatchRecord {
  key?: Buffer;
  value: Buffer;
  headers?: readonly (readonly [Buffer, Buffer])[];
  /** CreateTime, ms since the epoch. */
  timestamp: number;
}

/** The idempotent producer's fields: who wrote the batch and the sequence of its first record. */
export interface BatchProducer {
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
}

// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), one table lookup per byte.
const CRC32C_TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  CRC32C_TABLE[n] = c;
}

export function crc32c(data: Uint8Array): number {
  let crc = -1;
  for (let i = 0; i < data.length; i++) crc = CRC32C_TABLE[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

const BATCH_HEADER = 61;
/** Where the CRC sits (after baseOffset, batchLength, partitionLeaderEpoch, magic) and what it covers from. */
const CRC_AT = 17;
const ATTRIBUTES_AT = 21;

function encodeRecords(records: readonly BatchRecord[], baseTimestamp: number): Buffer {
  const w = new Writer(records.reduce((sum, r) => sum + r.value.length + 32, 0));
  records.forEach((record, offsetDelta) => {
    const timestampDelta = record.timestamp - baseTimestamp;
    const keyLength = record.key?.length ?? -1;
    const headers = record.headers ?? [];
    let size = 1 + varintSize(timestampDelta) + varintSize(offsetDelta);
    size += varintSize(keyLength) + Math.max(keyLength, 0) + varintSize(record.value.length) + record.value.length;
    size += varintSize(headers.length);
    for (const [name, value] of headers) size += varintSize(name.length) + name.length + varintSize(value.length) + value.length;
    w.varint(size).int8(0).varint(timestampDelta).varint(offsetDelta).varint(keyLength);
    if (record.key !== undefined) w.raw(record.key);
    w.varint(record.value.length).raw(record.value).varint(headers.length);
    for (const [name, value] of headers) w.varint(name.length).raw(name).varint(value.length).raw(value);
  });
  return w.finish();
}

/** One partition's records as a RecordBatch v2 (the NULLABLE_BYTES of a Produce request's partition). */
export async function encodeRecordBatch(records: readonly BatchRecord[], producer: BatchProducer, codec: Codec): Promise<Buffer> {
  let baseTimestamp = records[0].timestamp;
  let maxTimestamp = baseTimestamp;
  for (const { timestamp } of records) {
    if (timestamp < baseTimestamp) baseTimestamp = timestamp;
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
  }
  const plain = encodeRecords(records, baseTimestamp);
  const body = codec === 'gzip' ? await gzip(plain) : codec === 'lz4' ? lz4Frame(plain) : plain;
  const w = new Writer(BATCH_HEADER + body.length);
  w.int64(0n) // baseOffset: the broker assigns offsets
    .int32(BATCH_HEADER - 12 + body.length) // batchLength: everything after this field
    .int32(-1) // partitionLeaderEpoch: set by the broker
    .int8(2) // magic
    .int32(0) // crc, below
    .int16(CODEC_BITS[codec]) // attributes: CreateTime, not transactional, not control
    .int32(records.length - 1) // lastOffsetDelta
    .int64(baseTimestamp)
    .int64(maxTimestamp)
    .int64(producer.producerId)
    .int16(producer.producerEpoch)
    .int32(producer.baseSequence)
    .int32(records.length)
    .raw(body);
  const batch = w.finish();
  w.patchUint32(CRC_AT, crc32c(batch.subarray(ATTRIBUTES_AT)));
  return batch;
}
