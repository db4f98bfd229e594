/**
 * The protobuf wire format, as far as OTLP logs need it: varints, length-delimited fields and fixed64, written into
 * a buffer sized beforehand (the encoder adds up exact sizes first, so nothing is copied or grown), and a reader
 * that picks fields out of the small messages a collector answers with.
 */

export const VARINT = 0;
export const FIXED64 = 1;
export const LENGTH_DELIMITED = 2;
export const FIXED32 = 5;

/** Bytes of `value` (a non-negative safe integer) as a varint. */
export function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    size++;
  }
  return size;
}

/** Bytes of a length-delimited field whose content is `length` bytes, its one-byte tag included (fields 1-15). */
export const fieldSize = (length: number): number => 1 + varintSize(length) + length;

/** A tag byte: field numbers up to 15 fit in one. */
export const tag = (field: number, wireType: number): number => (field << 3) | wireType;

export class WireWriter {
  readonly buffer: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buffer = Buffer.allocUnsafe(size);
  }

  byte(value: number): void {
    this.buffer[this.pos++] = value;
  }

  varint(value: number): void {
    const { buffer } = this;
    while (value >= 0x80) {
      buffer[this.pos++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    buffer[this.pos++] = value;
  }

  bytes(bytes: Uint8Array): void {
    const { buffer } = this;
    const { length } = bytes;
    // A record is mostly pieces of a few bytes: a loop copies those faster than TypedArray.set can be called.
    if (length > 32) buffer.set(bytes, this.pos);
    else for (let k = 0, pos = this.pos; k < length; k++) buffer[pos++] = bytes[k];
    this.pos += length;
  }

  /** A length-delimited field: tag, length, bytes. */
  field(field: number, bytes: Uint8Array): void {
    this.byte(tag(field, LENGTH_DELIMITED));
    this.varint(bytes.length);
    this.bytes(bytes);
  }

  /** The tag and length of a length-delimited field whose content the caller writes next. */
  open(field: number, length: number): void {
    this.byte(tag(field, LENGTH_DELIMITED));
    this.varint(length);
  }
}

/** One field of a message being read: its number, wire type and, for varints and length-delimited fields, value. */
export interface WireField {
  field: number;
  wireType: number;
  varint?: number;
  bytes?: Uint8Array;
}

/** The fields of one message, in order. Throws on a truncated or malformed message. */
export function* readFields(message: Uint8Array): Generator<WireField> {
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    for (let scale = 1; ; scale *= 0x80) {
      if (pos >= message.length || scale > 2 ** 63) throw new Error('malformed protobuf varint');
      const byte = message[pos++];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
    }
  };
  const skip = (length: number): void => {
    if (pos + length > message.length) throw new Error('truncated protobuf field');
    pos += length;
  };
  while (pos < message.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (wireType === VARINT) {
      yield { field, wireType, varint: varint() };
    } else if (wireType === LENGTH_DELIMITED) {
      const length = varint();
      const start = pos;
      skip(length);
      yield { field, wireType, bytes: message.subarray(start, pos) };
    } else if (wireType === FIXED64) {
      skip(8);
      yield { field, wireType };
    } else if (wireType === FIXED32) {
      skip(4);
      yield { field, wireType };
    } else {
      throw new Error(`unsupported protobuf wire type ${wireType}`);
    }
  }
}
