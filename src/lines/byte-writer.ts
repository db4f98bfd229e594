/**
 * Encoded records built in one growing buffer, with line bytes going in as JSON string contents straight from a
 * batch: escaped byte by byte, with no string decode and re-encode per line (that was most of an encoder's time).
 */
export class ByteWriter {
  private buffer: Buffer;
  private length = 0;

  constructor(initialBytes = 1 << 16) {
    this.buffer = Buffer.allocUnsafe(Math.max(initialBytes, 1024));
  }

  /** Bytes written so far. */
  get size(): number {
    return this.length;
  }

  /** Starts over in the same memory. */
  reset(): void {
    this.length = 0;
  }

  bytes(bytes: Uint8Array): void {
    const length = bytes.length;
    this.ensure(length);
    const { buffer, length: at } = this;
    if (length < SMALL_COPY) for (let i = 0; i < length; i++) buffer[at + i] = bytes[i];
    else buffer.set(bytes, at);
    this.length = at + length;
  }

  /** `bytes` (valid UTF-8) as the contents of a JSON string: `"`, `\` and control characters escaped (RFC 8259 7). */
  jsonString(bytes: Uint8Array): void {
    let clean = 0;
    while (clean < bytes.length && NEEDS_ESCAPE[bytes[clean]] === 0) clean++;
    if (clean === bytes.length) return this.bytes(bytes);
    // Six bytes at most per byte (\u00XX).
    this.ensure(bytes.length * 6);
    const out = this.buffer;
    out.set(bytes.subarray(0, clean), this.length);
    let at = this.length + clean;
    for (let i = clean; i < bytes.length; i++) {
      const byte = bytes[i];
      if (NEEDS_ESCAPE[byte] === 0) {
        out[at++] = byte;
        continue;
      }
      const escape = JSON_ESCAPES[byte]!;
      for (let k = 0; k < escape.length; k++) out[at++] = escape[k];
    }
    this.length = at;
  }

  /** What was written: a view, valid until the next write or reset. */
  contents(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  private ensure(more: number): void {
    if (this.length + more <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + more));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }
}

/** Below this many bytes a copy by hand beats TypedArray.set. */
const SMALL_COPY = 32;
/** What a byte becomes inside a JSON string, for those that cannot stand for themselves. */
const JSON_ESCAPES: (Uint8Array | undefined)[] = Array.from({ length: 256 }, (_, byte) => {
  const short: Record<number, string> = {
    0x08: '\\b',
    0x09: '\\t',
    0x0a: '\\n',
    0x0c: '\\f',
    0x0d: '\\r',
    0x22: '\\"',
    0x5c: '\\\\',
  };
  if (short[byte] !== undefined) return new Uint8Array(Buffer.from(short[byte], 'latin1'));
  return byte < 0x20 ? new Uint8Array(Buffer.from(`\\u${byte.toString(16).padStart(4, '0')}`, 'latin1')) : undefined;
});
/** 1 for the bytes JSON_ESCAPES has: a typed array is the cheaper lookup in the per-byte loop. */
const NEEDS_ESCAPE = Uint8Array.from(JSON_ESCAPES, (escape) => (escape === undefined ? 0 : 1));
