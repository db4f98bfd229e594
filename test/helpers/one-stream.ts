import { DEFAULT_CONFIG } from '../../src/config/config.js';
import type { LineOptions } from '../../src/lines/line-buffer.js';
import type { StreamMetadata } from '../../src/mesos/metadata.js';
import type { Sink } from '../../src/sinks/sink.js';
import type { StreamQueue } from '../../src/sinks/stream-queue.js';

/** What a test does to the one stream of a sink: its queue's side. */
export interface OneStream {
  queue: StreamQueue;
  append(chunk: Buffer, time: number, meta: StreamMetadata): void;
  rejoin(openLine: Buffer | undefined, time: number, meta: StreamMetadata): void;
  detach(): void;
  buffered(): { lines: number; bytes: number };
}

/** The sink with one stream's queue attached, as the standalone helper runs each sink: appends go to that queue. */
export function withOneStream<S extends Sink>(sink: S, lines: LineOptions = DEFAULT_CONFIG.lines): S & OneStream {
  const queue = sink.attach(lines);
  return Object.assign(sink, {
    queue,
    append: (chunk: Buffer, time: number, meta: StreamMetadata) => queue.append(chunk, time, meta),
    rejoin: (openLine: Buffer | undefined, time: number, meta: StreamMetadata) => queue.rejoin(openLine, time, meta),
    detach: () => queue.detach(),
    buffered: () => queue.buffered(),
  });
}
