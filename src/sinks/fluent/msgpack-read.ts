/**
 * Reads the MessagePack values a Forward server sends back (HELO, PONG, `{ack: chunk}`) from a byte stream that
 * arrives in pieces. Strings decode to string, bin to Buffer, maps to plain objects (keys as strings), ext values
 * to `{ type, data }`. Replies are small: one larger than MAX_VALUE_BYTES is a protocol error.
 */
export type ReadValue = null | boolean | number | bigint | string | Buffer | ReadValue[] | { [key: string]: ReadValue } | ExtValue;

export interface ExtValue {
  type: number;
  data: Buffer;
}

const MAX_VALUE_BYTES = 1 << 20;

/** The value is not all there yet. */
const INCOMPLETE = Symbol('incomplete');

export class MsgpackReader {
  private pending: Buffer = Buffer.alloc(0);
  private at = 0;

  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.pending.length > MAX_VALUE_BYTES) throw new Error(`the server sent a value over ${MAX_VALUE_BYTES} bytes`);
  }

  /** The next whole value, or undefined until more bytes arrive. Throws on bytes that are not MessagePack. */
  next(): ReadValue | undefined {
    this.at = 0;
    let value: ReadValue;
    try {
      value = this.value();
    } catch (err) {
      if (err === INCOMPLETE) return undefined;
      throw err;
    }
    this.pending = this.pending.subarray(this.at);
    return value;
  }

  private take(size: number): Buffer {
    if (this.at + size > this.pending.length) throw INCOMPLETE;
    const bytes = this.pending.subarray(this.at, this.at + size);
    this.at += size;
    return bytes;
  }

  private uint(size: 1 | 2 | 4 | 8): number {
    const bytes = this.take(size);
    return size === 8 ? Number(bytes.readBigUInt64BE(0)) : bytes.readUIntBE(0, size);
  }

  private value(): ReadValue {
    const byte = this.take(1)[0];
    if (byte < 0x80) return byte;
    if (byte >= 0xe0) return byte - 0x100;
    if (byte >= 0xa0 && byte < 0xc0) return this.take(byte & 0x1f).toString('utf8');
    if (byte >= 0x90 && byte < 0xa0) return this.array(byte & 0x0f);
    if (byte >= 0x80 && byte < 0x90) return this.map(byte & 0x0f);
    switch (byte) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
      case 0xc5:
      case 0xc6:
        return Buffer.from(this.take(this.uint((1 << (byte - 0xc4)) as 1 | 2 | 4)));
      case 0xc7:
      case 0xc8:
      case 0xc9: {
        const size = this.uint((1 << (byte - 0xc7)) as 1 | 2 | 4);
        return this.ext(size);
      }
      case 0xca:
        return this.take(4).readFloatBE(0);
      case 0xcb:
        return this.take(8).readDoubleBE(0);
      case 0xcc:
        return this.uint(1);
      case 0xcd:
        return this.uint(2);
      case 0xce:
        return this.uint(4);
      case 0xcf:
        return this.take(8).readBigUInt64BE(0);
      case 0xd0:
        return this.take(1).readInt8(0);
      case 0xd1:
        return this.take(2).readInt16BE(0);
      case 0xd2:
        return this.take(4).readInt32BE(0);
      case 0xd3:
        return this.take(8).readBigInt64BE(0);
      case 0xd4:
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        return this.ext(1 << (byte - 0xd4));
      case 0xd9:
      case 0xda:
      case 0xdb:
        return this.take(this.uint((1 << (byte - 0xd9)) as 1 | 2 | 4)).toString('utf8');
      case 0xdc:
        return this.array(this.uint(2));
      case 0xdd:
        return this.array(this.uint(4));
      case 0xde:
        return this.map(this.uint(2));
      case 0xdf:
        return this.map(this.uint(4));
      default:
        throw new Error(`the server sent a byte that starts no MessagePack value (0x${byte.toString(16)})`);
    }
  }

  private ext(size: number): ExtValue {
    const type = this.take(1).readInt8(0);
    return { type, data: Buffer.from(this.take(size)) };
  }

  private array(count: number): ReadValue[] {
    // Each element takes at least a byte: a count beyond what is buffered waits for more (or fails at the cap).
    if (count > this.pending.length - this.at) throw INCOMPLETE;
    const items: ReadValue[] = [];
    for (let i = 0; i < count; i++) items.push(this.value());
    return items;
  }

  private map(count: number): { [key: string]: ReadValue } {
    if (2 * count > this.pending.length - this.at) throw INCOMPLETE;
    const map: { [key: string]: ReadValue } = {};
    for (let i = 0; i < count; i++) {
      const key = this.value();
      map[Buffer.isBuffer(key) ? key.toString('utf8') : String(key)] = this.value();
    }
    return map;
  }
}
