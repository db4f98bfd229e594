// The native newline counter and copy-and-count (native/newline-count.c) against JavaScript, and where it is found.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { copyCountingNewlines, copyCountJs, countNewlines, countNewlinesJs, nativeNewlineAddon } from '../src/lines/newline-count.js';
import { addonCandidates } from '../src/native-addon.js';

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
    expect(nativeNewlineAddon()?.count).toBeTypeOf('function');
    const candidates = addonCandidates('newline_count');
    const found = (from: string): boolean => candidates.some((candidate) => existsSync(join(from, candidate)));
    expect(found(join(ROOT, 'src'))).toBe(true);
    expect(found(join(ROOT, 'dist'))).toBe(true);
  });

  it('counts as the JavaScript count does, at every alignment, length and density', () => {
    const native = nativeNewlineAddon()!.count;
    for (const density of [0, 0.01, 0.1, 0.5, 1]) {
      const bytes = randomBytes(20_000, density, 7 + density * 100);
      for (const [from, to] of [[0, 0], [0, 1], [3, 18], [1, 4096], [5, 255 * 16 + 21], [17, 20_000], [0, 20_000]]) {
        expect(native(bytes, from, to), `density ${density} [${from}, ${to})`).toBe(countNewlinesJs(bytes, from, to));
      }
    }
  });

  it('a run of newlines longer than its 8-bit lane counters can hold is counted whole', () => {
    const bytes = Buffer.alloc(1 << 20, 0x0a);
    expect(nativeNewlineAddon()!.count(bytes, 0, bytes.length)).toBe(1 << 20);
    expect(countNewlines(bytes, 1, bytes.length - 1)).toBe((1 << 20) - 2);
  });

  it.each([
    ['native', () => nativeNewlineAddon()!.copyCount],
    ['JavaScript (without the addon)', () => copyCountJs],
  ])('copy-and-count, %s: copies the bytes and counts them, at every alignment and length', (_, copyCount) => {
    for (const density of [0, 0.1, 1]) {
      const bytes = randomBytes(20_000, density, 11 + density * 100);
      for (const [from, to, at] of [[0, 0, 0], [0, 1, 5], [3, 18, 1], [5, 255 * 16 + 21, 7], [17, 20_000, 0], [0, 20_000, 3]]) {
        const target = Buffer.alloc(20_010, 0x55);
        expect(copyCount()(bytes, from, to, target, at), `density ${density} [${from}, ${to}) at ${at}`).toBe(countNewlinesJs(bytes, from, to));
        expect(target.subarray(at, at + to - from).equals(bytes.subarray(from, to))).toBe(true);
        expect(target.subarray(0, at).every((b) => b === 0x55) && target.subarray(at + to - from).every((b) => b === 0x55)).toBe(true);
      }
    }
  });

  it.each([
    ['native', () => nativeNewlineAddon()!.copyCount],
    ['JavaScript (without the addon)', () => copyCountJs],
  ])('copy-and-count, %s: clamps to the room in the target', (_, copyCount) => {
    const target = Buffer.alloc(4);
    expect(copyCount()(Buffer.from('a\nb\nc\n'), 0, 6, target, 1)).toBe(1);
    expect(target.toString()).toBe('\0a\nb');
    expect(copyCount()(Buffer.from('\n'), 0, 1, target, 4)).toBe(0);
  });

  it('copy-and-count names its arguments when they are wrong; sinks call it through copyCountingNewlines', () => {
    expect(() => nativeNewlineAddon()!.copyCount(Buffer.from('a'), 0, 1, 'x' as never, 0)).toThrow(/copyCount\(source: Uint8Array/);
    const into = Buffer.alloc(6);
    expect(copyCountingNewlines(Buffer.from('xa\nb\n'), 1, 5, into, 2)).toBe(2);
    expect(into.subarray(2).toString()).toBe('a\nb\n');
  });

  it('clamps the range to the bytes, reads a view at its own offset, and names its arguments when they are wrong', () => {
    const native = nativeNewlineAddon()!.count;
    const bytes = Buffer.from('a\nb\nc\n');
    expect(native(bytes, 2, 100)).toBe(2);
    expect(native(bytes, 5, 2)).toBe(0);
    expect(native(bytes.subarray(2), 0, 4)).toBe(2);
    expect(() => native('a\n' as never, 0, 2)).toThrow(/count\(bytes: Uint8Array/);
  });
});
