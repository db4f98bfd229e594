import type { ConfigReader } from '../config-reader.js';
import type { Sink, SinkContext } from './sink.js';

/**
 * One forwarder type. Each owns its config schema: `parse` reads and validates its own keys (the reader rejects
 * unknown ones) and returns normalized options, printed by check-config and compared on reload.
 */
export interface SinkType<Options extends object = object> {
  readonly type: string;
  parse(reader: ConfigReader): Options;
  create(options: Options, context: SinkContext): Sink;
}
