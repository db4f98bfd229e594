/**
 * MessagePack encoding of the shapes the Forward protocol sends: headers written in place into a buffer sized in
 * advance (records, one line at a time, with no object per line), and `encodeValue` for the few small messages
 * (options, PING) where convenience beats speed.
 */

export const strHeaderSize = (length: number): number => (length < 32 ? 1 : length < 0x100 ? 2 : length < 0x10000 ? 3 : 5);

export function writeStrHeader(out: Buffer, at: number, length: number): number {
  if (length >= 32) return writeLengthHeader(out, at, length, 0xd9);
  out[at] = 0xa0 | length;
  return at + 1;
}

export const binHeaderSize = (length: number): number => (length < 0x100 ? 2 : length < 0x10000 ? 3 : 5);

export function writeBinHeader(out: Buffer, at: number, length: number): number {
  return writeLengthHeader(out, at, length, 0xc4);
}

/** str 8/16/32 and bin 8/16/32: the type byte of the 8-bit form, then +1 and +2 for the 16- and 32-bit ones. */
function writeLengthHeader(out: Buffer, at: number, length: number, code8: number): number {
  if (length < 0x100) {
    out[at] = code8;
    out[at + 1] = length;
    return at + 2;
  }
  if (length < 0x10000) {
    out[at] = code8 + 1;
    out.writeUInt16BE(length, at + 1);
    return at + 3;
  }
  out[at] = code8 + 2;
  out.writeUInt32BE(length, at + 1);
  return at + 5;
}

/** Maps and arrays share their size classes: fix (under 16), 16-bit, 32-bit. */
export const containerHeaderSize = (count: number): number => (count < 16 ? 1 : count < 0x10000 ? 3 : 5);

function writeContainerHeader(out: Buffer, at: number, count: number, fix: number, wide: number): number {
  if (count < 16) {
    out[at] = fix | count;
    return at + 1;
  }
  if (count < 0x10000) {
    out[at] = wide;
    out.writeUInt16BE(count, at + 1);
    return at + 3;
  }
  out[at] = wide + 1;
  out.writeUInt32BE(count, at + 1);
  return at + 5;
}

export const writeMapHeader = (out: Buffer, at: number, count: number): number => writeContainerHeader(out, at, count, 0x80, 0xde);
export const writeArrayHeader = (out: Buffer, at: number, count: number): number => writeContainerHeader(out, at, count, 0x90, 0xdc);

export const EVENT_TIME_SIZE = 10;

/**
 * Forward's EventTime: fixext 8 of type 0, seconds and nanoseconds since the epoch, each a big-endian uint32. `ms`
 * may have a fraction: it is kept to the microsecond, computed in whole microseconds so that no float error shows.
 */
export function writeEventTime(out: Buffer, at: number, ms: number): number {
  const micros = Math.round(ms * 1000);
  const seconds = Math.floor(micros / 1_000_000);
  out[at] = 0xd7;
  out[at + 1] = 0x00;
  out.writeUInt32BE(seconds >>> 0, at + 2);
  out.writeUInt32BE((micros - seconds * 1_000_000) * 1000, at + 6);
  return at + EVENT_TIME_SIZE;
}

/** What `encodeValue` takes: strings (str), bytes (bin), non-negative integers, booleans, nil, arrays and maps. */
export type PackValue = string | Uint8Array | number | boolean | null | PackValue[] | { [key: string]: PackValue };

/** Encodes a small value in one piece. */
export function encodeValue(value: PackValue): Buffer {
  const parts: Buffer[] = [];
  const header = (size: number, write: (out: Buffer) => void): void => {
    const out = Buffer.allocUnsafe(size);
    write(out);
    parts.push(out);
  };
  const visit = (v: PackValue): void => {
    if (v === null) parts.push(Buffer.of(0xc0));
    else if (typeof v === 'boolean') parts.push(Buffer.of(v ? 0xc3 : 0xc2));
    else if (typeof v === 'number') {
      if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`cannot encode ${v}: only non-negative integers`);
      if (v < 0x80) parts.push(Buffer.of(v));
      else if (v < 0x10000) header(3, (out) => ((out[0] = 0xcd), out.writeUInt16BE(v, 1)));
      else if (v < 0x1_0000_0000) header(5, (out) => ((out[0] = 0xce), out.writeUInt32BE(v, 1)));
      else header(9, (out) => ((out[0] = 0xcf), out.writeBigUInt64BE(BigInt(v), 1)));
    } else if (typeof v === 'string') {
      const bytes = Buffer.from(v, 'utf8');
      header(strHeaderSize(bytes.length), (out) => writeStrHeader(out, 0, bytes.length));
      parts.push(bytes);
    } else if (v instanceof Uint8Array) {
      header(binHeaderSize(v.length), (out) => writeBinHeader(out, 0, v.length));
      parts.push(Buffer.from(v.buffer, v.byteOffset, v.length));
    } else if (Array.isArray(v)) {
      header(containerHeaderSize(v.length), (out) => writeArrayHeader(out, 0, v.length));
      for (const item of v) visit(item);
    } else {
      const entries = Object.entries(v);
      header(containerHeaderSize(entries.length), (out) => writeMapHeader(out, 0, entries.length));
      for (const [key, item] of entries) {
        visit(key);
        visit(item);
      }
    }
  };
  visit(value);
  return Buffer.concat(parts);
}
