// The kafka client's primitives against published vectors: Kafka's murmur2 (the Java client's UtilsTest), CRC-32C
// (RFC 3720's check value), and a RecordBatch v2 read back field by field as the spec lays it out.
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { keyPartition, murmur2 } from '../src/sinks/kafka/client/partitioner.js';
import { crc32c, encodeRecordBatch } from '../src/sinks/kafka/client/record-batch.js';

describe('kafka client primitives', () => {
  it('murmur2 is the Java client\'s (org.apache.kafka.common.utils.UtilsTest vectors)', () => {
    const vectors: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [key, hash] of vectors) expect(murmur2(Buffer.from(key)), key).toBe(hash);
    expect(keyPartition(Buffer.from('21'), 4)).toBe((-973932308 & 0x7fffffff) % 4);
  });

  it('CRC-32C of "123456789" is 0xe3069283', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('a RecordBatch v2: header fields, CRC over attributes onwards, gzip body, varint records with key and headers', async () => {
    const records = [
      { key: Buffer.from('task-1'), value: Buffer.from('one'), timestamp: 1_700_000_000_500, headers: [[Buffer.from('stream'), Buffer.from('stdout')]] as [Buffer, Buffer][] },
      { value: Buffer.from('two'), timestamp: 1_700_000_000_000 },
    ];
    const batch = await encodeRecordBatch(records, { producerId: 1234n, producerEpoch: 3, baseSequence: 42 }, 'gzip');
    expect(batch.readBigInt64BE(0)).toBe(0n);
    expect(batch.readInt32BE(8)).toBe(batch.length - 12);
    expect(batch.readInt8(16)).toBe(2);
    expect(batch.readUInt32BE(17)).toBe(crc32c(batch.subarray(21)));
    expect(batch.readInt16BE(21) & 7).toBe(1);
    expect(batch.readInt32BE(23)).toBe(1); // lastOffsetDelta
    expect(batch.readBigInt64BE(27)).toBe(1_700_000_000_000n); // the earliest as the base
    expect(batch.readBigInt64BE(35)).toBe(1_700_000_000_500n);
    expect(batch.readBigInt64BE(43)).toBe(1234n);
    expect(batch.readInt16BE(51)).toBe(3);
    expect(batch.readInt32BE(53)).toBe(42);
    expect(batch.readInt32BE(57)).toBe(2);
    const body = gunzipSync(batch.subarray(61));
    // Zigzag varints: length, attributes, timestampDelta 500 (e8 07), offsetDelta 0, key length 6, key, value
    // length 3, value, 1 header: name length 6, name, value length 6, value.
    const first = Buffer.concat([Buffer.from([0x00, 0xe8, 0x07, 0x00, 0x0c]), Buffer.from('task-1'), Buffer.from([0x06]), Buffer.from('one'), Buffer.from([0x02, 0x0c]), Buffer.from('stream'), Buffer.from([0x0c]), Buffer.from('stdout')]);
    // The second: no key (-1 is 0x01), offsetDelta 1 (0x02), no headers.
    const second = Buffer.concat([Buffer.from([0x00, 0x00, 0x02, 0x01, 0x06]), Buffer.from('two'), Buffer.from([0x00])]);
    expect(body).toEqual(Buffer.concat([Buffer.from([first.length * 2]), first, Buffer.from([second.length * 2]), second]));
  });
});
