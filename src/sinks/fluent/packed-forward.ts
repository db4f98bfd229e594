import { crypto, gzip } from '../../lazy-builtins.js';
import type { LineBatch } from '../../lines/line-batch.js';
import type { Template } from '../template.js';
import { EntryEncoder } from './entry-encoder.js';
import { binHeaderSize, encodeValue, strHeaderSize, writeBinHeader, writeStrHeader, type PackValue } from './msgpack-write.js';
import { groupByTag } from './tag-groups.js';


/** One Forward message, encoded: `[tag, entries, option]`. */
export interface ForwardMessage {
  /** The `chunk` option: the id the server's `ack` names; undefined without acknowledgements. */
  chunk: string | undefined;
  bytes: Buffer;
}

export interface PackedForwardOptions {
  tag: Template;
  gzip: boolean;
  /** Give each message a `chunk` id, which asks the server for an `ack`. */
  chunkIds: boolean;
}

/**
 * Encodes a batch as PackedForward messages (CompressedPackedForward with gzip), one per tag group. Entries go as
 * `bin`, as the specification asks; the option carries `size` (the entry count), `chunk` (a random 128-bit id, in
 * base64) and `compressed: "gzip"`.
 */
export class PackedForwardEncoder {
  private readonly entries = new EntryEncoder();

  constructor(private readonly options: PackedForwardOptions) {}

  async encode(batch: LineBatch): Promise<ForwardMessage[]> {
    const messages: ForwardMessage[] = [];
    for (const group of groupByTag(batch, this.options.tag)) {
      const chunk = this.options.chunkIds ? crypto().randomBytes(16).toString('base64') : undefined;
      const option: Record<string, PackValue> = { size: group.lines.length };
      if (chunk !== undefined) option.chunk = chunk;
      const size = this.entries.size(batch, group.lines);
      if (!this.options.gzip) {
        messages.push({ chunk, bytes: this.message(group.tag, size, encodeValue(option), (out, at) => this.entries.write(batch, group.lines, out, at)) });
        continue;
      }
      const plain = Buffer.allocUnsafe(size);
      this.entries.write(batch, group.lines, plain, 0);
      const packed = await gzip(plain);
      option.compressed = 'gzip';
      messages.push({ chunk, bytes: this.message(group.tag, packed.length, encodeValue(option), (out, at) => at + packed.copy(out, at)) });
    }
    return messages;
  }

  /** `[tag, bin(entries), option]` in one buffer; `entries` writes the `size` bytes of entries at `at`. */
  private message(tag: string, size: number, option: Buffer, entries: (out: Buffer, at: number) => number): Buffer {
    const tagBytes = Buffer.from(tag, 'utf8');
    const total = 1 + strHeaderSize(tagBytes.length) + tagBytes.length + binHeaderSize(size) + size + option.length;
    const out = Buffer.allocUnsafe(total);
    out[0] = 0x93;
    let at = writeStrHeader(out, 1, tagBytes.length);
    at += tagBytes.copy(out, at);
    at = writeBinHeader(out, at, size);
    at = entries(out, at);
    at += option.copy(out, at);
    if (at !== total) throw new Error(`PackedForward message encoded to ${at} bytes, sized ${total}`);
    return out;
  }
}
