/**
 * A request body built in one growing buffer: the line bytes go in as JSON string contents straight from the batch,
 * escaped byte by byte, with no string decode and re-encode per line (those were most of the encoding time).
 */
export class BodyWriter {
  private buffer: Buffer;
  private length = 0;

  constructor(initialBytes: number) {
    this.buffer = Buffer.allocUnsafe(Math.max(initialBytes, 1024));
  }

  bytes(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** `bytes` (valid UTF-8) as the contents of a JSON string: `"`, `\` and control characters escaped (RFC 8259 7). */
  jsonString(bytes: Uint8Array): void {
    // Worst case: every byte a control character, 6 bytes as \u00XX.
    this.ensure(bytes.length * 6);
    const out = this.buffer;
    let at = this.length;
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i];
      if (byte >= 0x20 && byte !== 0x22 && byte !== 0x5c) {
        out[at++] = byte;
        continue;
      }
      out[at++] = 0x5c;
      const short = SHORT_ESCAPES[byte];
      if (short !== 0) {
        out[at++] = short;
      } else {
        out[at++] = 0x75; // u00XX
        out[at++] = 0x30;
        out[at++] = 0x30;
        out[at++] = HEX[byte >> 4];
        out[at++] = HEX[byte & 15];
      }
    }
    this.length = at;
  }

  /** What was written; valid until the next write. */
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

const HEX = Buffer.from('0123456789abcdef');
/** The letter after `\` for `"`, `\` and the control characters JSON names; 0 for the rest (written \u00XX). */
const SHORT_ESCAPES = new Uint8Array(0x60);
for (const [byte, letter] of [[0x22, '"'], [0x5c, '\\'], [0x08, 'b'], [0x0c, 'f'], [0x0a, 'n'], [0x0d, 'r'], [0x09, 't']] as const) {
  SHORT_ESCAPES[byte] = letter.charCodeAt(0);
}
