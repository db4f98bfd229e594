import { expect } from 'vitest';
import type { StreamMetadata } from '../../src/mesos/metadata.js';
import type { LineStats } from '../../src/sinks/stream-queue.js';

/** What takes a stream's chunks: a StreamQueue (or a test sink that owns one). */
interface Appendable {
  append(chunk: Buffer, time: number, meta: StreamMetadata): void;
}

export interface FeedOptions {
  /** Arrival time stamped on the lines (default: now). */
  time?: number;
  /** Leave the last line without its newline: the sink sends it, flagged partial, after idle or at stop(). */
  unterminated?: boolean;
}

/** The bytes of these lines as the task writes them: each followed by '\n'. */
export function streamBytes(lines: (string | Buffer)[], unterminated = false): Buffer {
  const parts = lines.flatMap((line, i) => {
    const bytes = Buffer.isBuffer(line) ? line : Buffer.from(line);
    return unterminated && i === lines.length - 1 ? [bytes] : [bytes, Buffer.from('\n')];
  });
  return Buffer.concat(parts);
}

/** Hands lines to a sink as the pipeline does: one chunk of the stream. */
export function feed(sink: Appendable, meta: StreamMetadata, lines: (string | Buffer)[], options: FeedOptions = {}): void {
  sink.append(streamBytes(lines, options.unterminated), options.time ?? Date.now(), meta);
}

/**
 * in = sent + dropped + still buffered, as the exit summary must show. Bytes are counted on the way in; linesIn is
 * derived from the others, so the line half guards the derivation and the tests assert linesIn against what they wrote.
 */
export function expectCountersAddUp(sink: { stats: LineStats }): void {
  const { linesIn, linesSent, linesDropped, bytesIn, bytesSent, bytesDropped, bufferedLines, bufferedBytes } = sink.stats;
  expect(linesIn).toBe(linesSent + linesDropped + bufferedLines);
  expect(bytesIn).toBe(bytesSent + bytesDropped + bufferedBytes);
}
