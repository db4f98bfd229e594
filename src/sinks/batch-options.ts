import type { ConfigReader } from '../config-reader.js';

/** A network sink's `batch:` map: a batch is sent when it has max_lines or max_bytes, or after max_delay_ms. */
export interface BatchOptions {
  max_lines: number;
  max_bytes: number;
  max_delay_ms: number;
}

export function parseBatch(reader: ConfigReader, defaults: BatchOptions): BatchOptions {
  const batch = {
    max_lines: reader.integer('max_lines', defaults.max_lines, 1, 1_000_000),
    max_bytes: reader.bytes('max_bytes', defaults.max_bytes, 1024),
    max_delay_ms: reader.integer('max_delay_ms', defaults.max_delay_ms, 0, 60_000),
  };
  reader.done();
  return batch;
}
