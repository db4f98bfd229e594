/** `count` lines of exactly `width` bytes including the newline: `<label> <i>` padded with dots. */
export function numberedLines(count: number, width: number, label = 'line', first = 0): Buffer {
  const out = Buffer.alloc(count * width, '.');
  for (let i = 0; i < count; i++) {
    const head = `${label} ${first + i} `;
    if (head.length >= width) throw new Error(`lines of ${width} bytes cannot hold '${head}'`);
    out.write(head, i * width, 'latin1');
    out[(i + 1) * width - 1] = 0x0a;
  }
  return out;
}

/** Deterministic pseudo-random bytes (xorshift32), so a failure can be replayed. */
export function randomBytes(length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Splits a buffer into chunks of at most `size` bytes, for writing through the pipe piece by piece. */
export function chunks(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}
