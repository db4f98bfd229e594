import type { LineBatch } from '../../lines/line-batch.js';

/** Line i of a batch as a JSON string literal: valid UTF-8 (U+FFFD replacements), without its newline. */
export function lineJson(batch: LineBatch, i: number): string {
  const line = batch.utf8(i);
  return JSON.stringify(Buffer.from(line.buffer, line.byteOffset, line.length).toString('utf8'));
}
