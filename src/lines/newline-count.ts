import { loadNativeAddon } from '../native-addon.js';

const LF = 0x0a;

type Count = (bytes: Uint8Array, from: number, to: number) => number;
type CopyCount = (source: Uint8Array, from: number, to: number, target: Uint8Array, at: number) => number;
export interface NewlineAddon {
  count: Count;
  copyCount: CopyCount;
}

/** Newlines in bytes[from, to) with native indexOf once per newline: the fallback when the addon is not built. */
export const countNewlinesJs: Count = (bytes, from, to) => {
  // Ending the view at `to` keeps the last indexOf from scanning on to the next newline past it.
  const view = to < bytes.length ? bytes.subarray(0, Math.max(to, 0)) : bytes;
  let n = 0;
  for (let at = view.indexOf(LF, from); at >= 0; at = view.indexOf(LF, at + 1)) n++;
  return n;
};

/** Copies source[from, to) to target at `at` and counts its newlines, in JavaScript: the fallback. */
export const copyCountJs: CopyCount = (source, from, to, target, at) => {
  const copied = Math.max(0, Math.min(to, source.length, from + target.length - at) - from);
  target.set(source.subarray(from, from + copied), at);
  return countNewlinesJs(source, from, from + copied);
};

let native: NewlineAddon | null | undefined;

/** The addon (native/newline-count.c, built by `npm ci`), loaded on first use; null when it is missing. */
export function nativeNewlineAddon(): NewlineAddon | null {
  if (native === undefined) native = loadNativeAddon<NewlineAddon>('newline_count') ?? null;
  return native;
}

/** Newlines in bytes[from, to): natively when the addon loads (about 4x faster), else in JavaScript. */
export function countNewlines(bytes: Uint8Array, from: number, to: number): number {
  const addon = nativeNewlineAddon();
  return addon !== null ? addon.count(bytes, from, to) : countNewlinesJs(bytes, from, to);
}

/** Copies source[from, to) into target at `at` and returns the newlines copied: one pass over the bytes natively. */
export function copyCountingNewlines(
  source: Uint8Array,
  from: number,
  to: number,
  target: Uint8Array,
  at: number,
): number {
  const addon = nativeNewlineAddon();
  return addon !== null ? addon.copyCount(source, from, to, target, at) : copyCountJs(source, from, to, target, at);
}
