import { zlib } from '../lazy-builtins.js';

/**
 * A spool record on disk: `u32 FRAME_MAGIC`, `u32 length` of the body, `u32 crc32` of the length's 4 bytes and the
 * body, then the body, little-endian. The magic lets a reader find the next record after damage without trusting a
 * damaged length; the CRC covers the length so a flipped length bit is caught too.
 *
 * Bodies: a metadata record, `u8 META`, `u32 ref`, JSON `{key, meta}` (once per stream metadata per segment); a line
 * record, `u8 LINE`, `u32 ref`, `u8 flags`, `f64 time`, `u32 text length`, then the stream bytes the line consumed:
 * its text and what ended it (LF or CRLF; none for a piece of a cut line or an idle-flushed one).
 */
export const FRAME_MAGIC = 0x52534c4d; // "MLSR" in the file
export const FRAME_HEADER_BYTES = 12;
export const META = 1;
export const LINE = 2;
const LINE_HEADER_BYTES = 1 + 4 + 1 + 8 + 4;
/** Larger is damage: bounds what one read may allocate. A line record is max_line_bytes plus its header. */
export const MAX_BODY_BYTES = 16 << 20;

/** Line flags. PARTIAL: the batch's partial flag. COUNTS_LINE: the record ends a line of the stream's count. */
export const PARTIAL = 1;
export const COUNTS_LINE = 2;

export const lineFrameBytes = (streamBytes: number): number => FRAME_HEADER_BYTES + LINE_HEADER_BYTES + streamBytes;

/** Writes the frame header for a body already in place at `at + FRAME_HEADER_BYTES`; returns the frame's end. */
function seal(into: Buffer, at: number, bodyBytes: number): number {
  into.writeUInt32LE(FRAME_MAGIC, at);
  into.writeUInt32LE(bodyBytes, at + 4);
  const body = at + FRAME_HEADER_BYTES;
  into.writeUInt32LE(zlib().crc32(into.subarray(body, body + bodyBytes), zlib().crc32(into.subarray(at + 4, at + 8))), at + 8);
  return body + bodyBytes;
}

export function encodeMeta(ref: number, key: string, meta: object): Buffer {
  const json = Buffer.from(JSON.stringify({ key, meta }));
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 5 + json.length);
  const body = FRAME_HEADER_BYTES;
  frame[body] = META;
  frame.writeUInt32LE(ref, body + 1);
  json.copy(frame, body + 5);
  seal(frame, 0, 5 + json.length);
  return frame;
}

/** Encodes a line record at `at` in `into` (room checked by the caller); `stream` holds the text and its ending. */
export function encodeLine(
  into: Buffer,
  at: number,
  ref: number,
  flags: number,
  time: number,
  textBytes: number,
  stream: Uint8Array,
): number {
  const body = at + FRAME_HEADER_BYTES;
  into[body] = LINE;
  into.writeUInt32LE(ref, body + 1);
  into[body + 5] = flags;
  into.writeDoubleLE(time, body + 6);
  into.writeUInt32LE(textBytes, body + 14);
  into.set(stream, body + LINE_HEADER_BYTES);
  return seal(into, at, LINE_HEADER_BYTES + stream.length);
}

export type Frame =
  | { kind: 'meta'; bytes: number; ref: number; key: string; meta: unknown }
  | { kind: 'line'; bytes: number; ref: number; flags: number; time: number; textBytes: number; stream: Buffer }
  /** Not enough bytes for the whole frame: `need` bytes from its start. */
  | { kind: 'short'; need: number }
  | { kind: 'bad'; why: string };

/** Reads the frame at `at` in `chunk[0, end)`; the stream bytes of a line are a view into `chunk`. */
export function decodeFrame(chunk: Buffer, at: number, end: number): Frame {
  if (end - at < FRAME_HEADER_BYTES) return { kind: 'short', need: FRAME_HEADER_BYTES };
  if (chunk.readUInt32LE(at) !== FRAME_MAGIC) return { kind: 'bad', why: 'no record starts here' };
  const length = chunk.readUInt32LE(at + 4);
  if (length < 5 || length > MAX_BODY_BYTES) return { kind: 'bad', why: `impossible length ${length}` };
  const bytes = FRAME_HEADER_BYTES + length;
  if (end - at < bytes) return { kind: 'short', need: bytes };
  const body = at + FRAME_HEADER_BYTES;
  if (zlib().crc32(chunk.subarray(body, body + length), zlib().crc32(chunk.subarray(at + 4, at + 8))) !== chunk.readUInt32LE(at + 8)) {
    return { kind: 'bad', why: 'CRC mismatch' };
  }
  const ref = chunk.readUInt32LE(body + 1);
  if (chunk[body] === META) {
    try {
      const { key, meta } = JSON.parse(chunk.toString('utf8', body + 5, body + length)) as { key: string; meta: unknown };
      return { kind: 'meta', bytes, ref, key, meta };
    } catch {
      return { kind: 'bad', why: 'metadata is not JSON' };
    }
  }
  if (chunk[body] !== LINE || length < LINE_HEADER_BYTES) return { kind: 'bad', why: `unknown record type ${chunk[body]}` };
  const textBytes = chunk.readUInt32LE(body + 14);
  if (textBytes > length - LINE_HEADER_BYTES) return { kind: 'bad', why: 'text longer than the record' };
  return {
    kind: 'line',
    bytes,
    ref,
    flags: chunk[body + 5],
    time: chunk.readDoubleLE(body + 6),
    textBytes,
    stream: chunk.subarray(body + LINE_HEADER_BYTES, body + length),
  };
}

const MAGIC_BYTES = Buffer.alloc(4);
MAGIC_BYTES.writeUInt32LE(FRAME_MAGIC);

/** Where the next frame might start at or after `from` in `chunk[0, end)`, or -1. */
export const findFrameStart = (chunk: Buffer, from: number, end: number): number =>
  chunk.subarray(0, end).indexOf(MAGIC_BYTES, from);
