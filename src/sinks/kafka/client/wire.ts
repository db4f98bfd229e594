// The Kafka protocol's primitive types (kafka.apache.org/protocol#protocol_types), for the non-flexible request and
// response versions this client speaks: big-endian integers, int16-length strings, int32-length bytes, int32-count
// arrays, and the zigzag varints of RecordBatch v2 records.

/** Bytes a zigzag varint (or varlong) of `value` takes. */
export function varintSize(value: number): number {
  let n = value >= 0 ? value * 2 : -value * 2 - 1;
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** A growing buffer that requests and record batches are written into. */
export class Writer {
  private buf: Buffer;
  private at = 0;

  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }

  get length(): number {
    return this.at;
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }

  int8(v: number): this {
    this.room(1);
    this.at = this.buf.writeInt8(v, this.at);
    return this;
  }

  int16(v: number): this {
    this.room(2);
    this.at = this.buf.writeInt16BE(v, this.at);
    return this;
  }

  int32(v: number): this {
    this.room(4);
    this.at = this.buf.writeInt32BE(v, this.at);
    return this;
  }

  int64(v: bigint | number): this {
    this.room(8);
    this.at = this.buf.writeBigInt64BE(BigInt(v), this.at);
    return this;
  }

  /** Zigzag varint or varlong (a safe integer either way). */
  varint(value: number): this {
    let n = value >= 0 ? value * 2 : -value * 2 - 1;
    this.room(10);
    while (n >= 0x80) {
      this.buf[this.at++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.at++] = n;
    return this;
  }

  raw(bytes: Uint8Array): this {
    this.room(bytes.length);
    this.buf.set(bytes, this.at);
    this.at += bytes.length;
    return this;
  }

  /** STRING or NULLABLE_STRING: int16 length (-1 for null), UTF-8. */
  string(s: string | null): this {
    if (s === null) return this.int16(-1);
    const bytes = Buffer.from(s);
    return this.int16(bytes.length).raw(bytes);
  }

  /** BYTES or NULLABLE_BYTES: int32 length (-1 for null). */
  bytes(b: Uint8Array | null): this {
    if (b === null) return this.int32(-1);
    return this.int32(b.length).raw(b);
  }

  /** ARRAY: int32 count, then each item. */
  array<T>(items: readonly T[], each: (item: T) => void): this {
    this.int32(items.length);
    for (const item of items) each(item);
    return this;
  }

  /** Overwrites an int32 written earlier (a length or a CRC known only at the end). */
  patchUint32(at: number, v: number): void {
    this.buf.writeUInt32BE(v >>> 0, at);
  }

  /** The bytes written (a view: the writer is not used again). */
  finish(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}

/** Reads a response body; reading past its end throws (a truncated or misparsed answer). */
export class Reader {
  constructor(
    private readonly buf: Buffer,
    private at = 0,
  ) {}

  private take(n: number): number {
    const from = this.at;
    if (from + n > this.buf.length) throw new Error(`kafka response truncated (${n} bytes wanted at ${from} of ${this.buf.length})`);
    this.at += n;
    return from;
  }

  int8 = (): number => this.buf.readInt8(this.take(1));
  int16 = (): number => this.buf.readInt16BE(this.take(2));
  int32 = (): number => this.buf.readInt32BE(this.take(4));
  int64 = (): bigint => this.buf.readBigInt64BE(this.take(8));
  boolean = (): boolean => this.int8() !== 0;

  string(): string | null {
    const n = this.int16();
    if (n < 0) return null;
    const from = this.take(n);
    return this.buf.toString('utf8', from, from + n);
  }

  bytes(): Buffer | null {
    const n = this.int32();
    if (n < 0) return null;
    const from = this.take(n);
    return this.buf.subarray(from, from + n);
  }

  array<T>(item: () => T): T[] {
    const n = this.int32();
    const items: T[] = [];
    for (let i = 0; i < n; i++) items.push(item());
    return items;
  }
}
