// The native newline counter (native/newline-count.c) against the JavaScript count, and where it is found.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ADDON_CANDIDATES, countNewlines, countNewlinesJs, nativeNewlineCounter } from '../src/lines/newline-count.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Bytes where `density` of them are newlines, the rest random (NULs, CRs and 0xff included). */
function randomBytes(length: number, density: number, seed: number): Buffer {
  const bytes = Buffer.alloc(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[i] = state / 2 ** 32 < density ? 0x0a : (state >>> 8) & 0xff;
  }
  return bytes;
}

describe('newline count', () => {
  it('npm ci built the native counter, and both places the code runs from find it', () => {
    expect(nativeNewlineCounter()).toBeTypeOf('function');
    const found = (from: string): boolean => ADDON_CANDIDATES.some((candidate) => existsSync(join(from, candidate)));
    expect(found(join(ROOT, 'src/lines'))).toBe(true);
    expect(found(join(ROOT, 'dist'))).toBe(true);
  });

  it('counts as the JavaScript count does, at every alignment, length and density', () => {
    const native = nativeNewlineCounter()!;
    for (const density of [0, 0.01, 0.1, 0.5, 1]) {
      const bytes = randomBytes(20_000, density, 7 + density * 100);
      for (const [from, to] of [[0, 0], [0, 1], [3, 18], [1, 4096], [5, 255 * 16 + 21], [17, 20_000], [0, 20_000]]) {
        expect(native(bytes, from, to), `density ${density} [${from}, ${to})`).toBe(countNewlinesJs(bytes, from, to));
      }
    }
  });

  it('a run of newlines longer than its 8-bit lane counters can hold is counted whole', () => {
    const bytes = Buffer.alloc(1 << 20, 0x0a);
    expect(nativeNewlineCounter()!(bytes, 0, bytes.length)).toBe(1 << 20);
    expect(countNewlines(bytes, 1, bytes.length - 1)).toBe((1 << 20) - 2);
  });

  it('clamps the range to the bytes, reads a view at its own offset, and names its arguments when they are wrong', () => {
    const native = nativeNewlineCounter()!;
    const bytes = Buffer.from('a\nb\nc\n');
    expect(native(bytes, 2, 100)).toBe(2);
    expect(native(bytes, 5, 2)).toBe(0);
    expect(native(bytes.subarray(2), 0, 4)).toBe(2);
    expect(() => native('a\n' as never, 0, 2)).toThrow(/count\(bytes: Uint8Array/);
  });
});
