// LZ4 as Kafka's lz4 codec carries it (KIP-57): one LZ4 frame (lz4.github.io/lz4, Frame format) of independent
// 64 KB blocks, no checksums but the header's, each block in the LZ4 block format, compressed greedily with a hash
// table of 4-byte sequences (the reference compressor's fast mode without its acceleration).

const BLOCK = 64 * 1024;
const HASH_LOG = 14;
/** A match must start this far from the block's end, and the last 5 bytes are literals (the block format's rules). */
const MFLIMIT = 12;
const LAST_LITERALS = 5;
const MAX_OFFSET = 65_535;

/** xxHash32 with seed 0 of fewer than 16 bytes (the frame descriptor): github.com/Cyan4973/xxHash, XXH32. */
function xxh32Short(bytes: number[]): number {
  const P1 = 2654435761;
  const P2 = 2246822519;
  const P3 = 3266489917;
  const P5 = 374761393;
  const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
  let h = (P5 + bytes.length) | 0;
  for (const byte of bytes) h = Math.imul(rotl((h + Math.imul(byte, P5)) | 0, 11), P1);
  h = Math.imul(h ^ (h >>> 15), P2);
  h = Math.imul(h ^ (h >>> 13), P3);
  return (h ^ (h >>> 16)) >>> 0;
}

/** FLG: version 01, independent blocks, no block or content checksum, no content size. BD: 64 KB blocks. */
const FLG = 0x60;
const BD = 0x40;
const HEADER = Buffer.from([0x04, 0x22, 0x4d, 0x18, FLG, BD, (xxh32Short([FLG, BD]) >>> 8) & 0xff]);

const table = new Int32Array(1 << HASH_LOG);

/** Writes a length's continuation bytes (after the token's 15). */
function writeLength(dst: Buffer, at: number, length: number): number {
  let rest = length - 15;
  while (rest >= 255) {
    dst[at++] = 255;
    rest -= 255;
  }
  dst[at++] = rest;
  return at;
}

/** One block of `src[start, end)` into `dst` at `at`; returns where it ended. */
function compressBlock(src: Buffer, start: number, end: number, dst: Buffer, at: number): number {
  table.fill(-1);
  let anchor = start;
  let i = start;
  const matchStartLimit = end - MFLIMIT;
  const matchEndLimit = end - LAST_LITERALS;
  while (i < matchStartLimit) {
    const sequence = src.readUInt32LE(i);
    const hash = Math.imul(sequence, 2654435761) >>> (32 - HASH_LOG);
    const ref = table[hash];
    table[hash] = i;
    if (ref < 0 || i - ref > MAX_OFFSET || src.readUInt32LE(ref) !== sequence) {
      i++;
      continue;
    }
    let length = 4;
    while (i + length < matchEndLimit && src[ref + length] === src[i + length]) length++;
    const literals = i - anchor;
    const token = at++;
    if (literals >= 15) at = writeLength(dst, at, literals);
    at += src.copy(dst, at, anchor, i);
    dst.writeUInt16LE(i - ref, at);
    at += 2;
    const extra = length - 4;
    if (extra >= 15) at = writeLength(dst, at, extra);
    dst[token] = (Math.min(literals, 15) << 4) | Math.min(extra, 15);
    i += length;
    anchor = i;
  }
  const literals = end - anchor;
  dst[at++] = Math.min(literals, 15) << 4;
  if (literals >= 15) at = writeLength(dst, at, literals);
  return at + src.copy(dst, at, anchor, end);
}

export function lz4Frame(src: Buffer): Buffer {
  // Worst case: every block stored (a 4-byte size each), plus the header and the end mark.
  const dst = Buffer.allocUnsafe(HEADER.length + src.length + Math.ceil(src.length / 255) + 4 * (Math.ceil(src.length / BLOCK) + 2) + 16);
  let at = HEADER.copy(dst, 0);
  for (let start = 0; start < src.length; start += BLOCK) {
    const end = Math.min(start + BLOCK, src.length);
    const compressedEnd = compressBlock(src, start, end, dst, at + 4);
    const size = compressedEnd - at - 4;
    if (size < end - start) {
      dst.writeUInt32LE(size, at);
      at = compressedEnd;
    } else {
      // Not smaller: stored as it is (the size's high bit says so).
      dst.writeUInt32LE(((end - start) | 0x80000000) >>> 0, at);
      at += 4 + src.copy(dst, at + 4, start, end);
    }
  }
  dst.writeUInt32LE(0, at);
  return dst.subarray(0, at + 4);
}
