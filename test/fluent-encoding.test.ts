// The fluent sink's encoding, decoded with @msgpack/msgpack (independent of the sink's encoder): records with
// enriched ids and labels, tag groups that keep each stream in order, and the reader of the server's replies.
import { decode, decodeMulti, encode, ExtensionCodec } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { LineBatch } from '../src/lines/line-batch.js';
import type { StreamMetadata } from '../src/mesos/metadata.js';
import { compileTemplate } from '../src/sinks/template.js';
import { MsgpackReader } from '../src/sinks/fluent/msgpack-read.js';
import { encodeValue } from '../src/sinks/fluent/msgpack-write.js';
import { PackedForwardEncoder } from '../src/sinks/fluent/packed-forward.js';
import { groupByTag } from '../src/sinks/fluent/tag-groups.js';

const extensionCodec = new ExtensionCodec();
extensionCodec.register({
  type: 0,
  encode: () => null,
  decode: (data: Uint8Array) => {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    return { seconds: view.getUint32(0), nanoseconds: view.getUint32(4) };
  },
});

const meta = (sandbox: string, stream: 'stdout' | 'stderr', extra: Partial<StreamMetadata> = {}): StreamMetadata => ({
  stream,
  hostname: 'agent-7',
  sandbox,
  executor_labels: {},
  task_labels: {},
  ...extra,
});

/** A batch of `lines` (text without newline), each with its metadata. */
function batchOf(lines: [string, StreamMetadata][], times?: number[]): LineBatch {
  const data = Buffer.from(lines.map(([text]) => `${text}\n`).join(''));
  const starts = new Uint32Array(lines.length);
  const stops = new Uint32Array(lines.length);
  let at = 0;
  lines.forEach(([text], i) => {
    starts[i] = at;
    stops[i] = at + Buffer.byteLength(text);
    at = stops[i] + 1;
  });
  const time = Float64Array.from(times ?? lines.map(() => 1_700_000_000_123.456));
  return new LineBatch(data, starts, stops, new Uint8Array(lines.length), time, lines.map(([, m]) => m), true, lines.length);
}

describe('fluent encoding', () => {
  it('a record carries the line, source, the enriched ids and the labels as maps; EventTime has the nanoseconds', async () => {
    const enriched = meta('/s/A', 'stderr', {
      agent_id: 'S1',
      framework_id: 'F1',
      executor_id: 'E1',
      container_id: 'C1.C2',
      task_id: 'web.1',
      task_name: 'web',
      framework_name: 'marathon',
      user: 'nobody',
      task_labels: { team: 'pay', 'a.b': 'ü' },
      executor_labels: { tier: 'front' },
    });
    const encoder = new PackedForwardEncoder({ tag: compileTemplate('tag', 'mesos.{task_label.team}'), gzip: false, chunkIds: true });
    const [message] = await encoder.encode(batchOf([['héllo "world"', enriched]]));
    const [tag, entries, option] = decode(message.bytes) as [string, Uint8Array, Record<string, unknown>];
    expect(tag).toBe('mesos.pay');
    expect(option).toEqual({ size: 1, chunk: message.chunk });
    expect([...decodeMulti(entries, { extensionCodec })]).toEqual([
      [
        { seconds: 1_700_000_000, nanoseconds: 123_456_000 },
        {
          log: 'héllo "world"',
          source: 'stderr',
          hostname: 'agent-7',
          agent_id: 'S1',
          framework_id: 'F1',
          executor_id: 'E1',
          container_id: 'C1.C2',
          task_id: 'web.1',
          task_name: 'web',
          framework_name: 'marathon',
          user: 'nobody',
          task_labels: { team: 'pay', 'a.b': 'ü' },
          executor_labels: { tier: 'front' },
        },
      ],
    ]);
  });

  it('lines longer than 255 and 65535 bytes get the wider str headers', async () => {
    const encoder = new PackedForwardEncoder({ tag: compileTemplate('tag', 't'), gzip: false, chunkIds: false });
    const lines = ['x'.repeat(31), 'y'.repeat(32), 'z'.repeat(300), 'w'.repeat(70_000)];
    const [message] = await encoder.encode(batchOf(lines.map((line) => [line, meta('/s/A', 'stdout')])));
    const [, entries, option] = decode(message.bytes) as [string, Uint8Array, Record<string, unknown>];
    expect(option).toEqual({ size: 4 });
    expect([...decodeMulti(entries, { extensionCodec })].map((entry) => (entry as [unknown, { log: string }])[1].log)).toEqual(lines);
  });

  it('tag groups: one per tag, and a stream never goes back before its earlier lines', () => {
    const a1 = meta('/s/A', 'stdout');
    const a2 = { ...meta('/s/A', 'stdout'), task_id: 'T' }; // A's metadata after enrichment
    const b = meta('/s/B', 'stdout', { task_id: 'T' });
    const template = compileTemplate('tag', 'x.{task_id}');
    // B: x.T throughout. A: x._, then x.T (enriched): A's x.T line cannot join B's first group, sent before A's x._
    // line, so it opens a second x.T group; then x._ again (as a {date} tag could come back): a new x._ group.
    const batch = batchOf([
      ['b0', b],
      ['a0', a1],
      ['b1', b],
      ['a1', a2],
      ['a2', a1],
      ['b2', b],
    ]);
    const groups = groupByTag(batch, template).map((group) => ({ tag: group.tag, lines: group.lines.map((i) => `${batch.metas[i].sandbox}:${i}`) }));
    expect(groups).toEqual([
      { tag: 'x.T', lines: ['/s/B:0', '/s/B:2'] },
      { tag: 'x._', lines: ['/s/A:1'] },
      { tag: 'x.T', lines: ['/s/A:3', '/s/B:5'] },
      { tag: 'x._', lines: ['/s/A:4'] },
    ]);
  });

  it("the reply reader takes values cut anywhere, str and bin alike", () => {
    const replies = Buffer.concat([
      Buffer.from(encode(['HELO', { nonce: new Uint8Array([1, 2, 3]), auth: '', keepalive: true }])),
      Buffer.from(encode({ ack: 'p8n9gmxTQVC8/nh2wlKKeQ==' })),
      encodeValue(['PONG', true, '', 'server', 'ab'.repeat(64)]),
    ]);
    for (const cut of [1, 2, 7, 20, replies.length - 1]) {
      const reader = new MsgpackReader();
      const values: unknown[] = [];
      for (const piece of [replies.subarray(0, cut), replies.subarray(cut)]) {
        reader.push(piece);
        for (let value = reader.next(); value !== undefined; value = reader.next()) values.push(value);
      }
      expect(values).toEqual([
        ['HELO', { nonce: Buffer.from([1, 2, 3]), auth: '', keepalive: true }],
        { ack: 'p8n9gmxTQVC8/nh2wlKKeQ==' },
        ['PONG', true, '', 'server', 'ab'.repeat(64)],
      ]);
    }
  });
});
