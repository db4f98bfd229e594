import type { Logger } from '../diagnostics.js';
import type { ConfigReader } from '../config/reader.js';
import type { StreamMetadata } from '../mesos/metadata.js';
import type { BufferConfig, LineOptions } from '../lines/line-buffer.js';
import type { Sink } from './sink.js';

/** What a sink instance is built with, for one stream. */
export interface SinkContext {
  /** The sink's name: its key under `sinks:`. */
  name: string;
  buffer: BufferConfig;
  /** How the stream is cut into lines (the config's `lines:`); a reload applies new values via reconfigureLines. */
  lines: LineOptions;
  log: Logger;
  /** Metadata known at start; each record carries the metadata current when its bytes arrived. */
  meta: StreamMetadata;
}

/**
 * One forwarder type. Each owns its config schema: `parse` reads and validates its own keys (the reader rejects
 * unknown ones) and returns normalized options, printed by check-config and compared on reload.
 */
export interface SinkType<Options extends object = object> {
  readonly type: string;
  parse(reader: ConfigReader): Options;
  create(options: Options, context: SinkContext): Sink;
}
