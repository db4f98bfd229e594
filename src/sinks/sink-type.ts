import type { ConfigReader } from '../config-reader.js';
import type { Sink, SinkContext } from './sink.js';

/**
 * One forwarder type. Each owns its config schema: `parse` reads and validates its own keys (the reader rejects
 * unknown ones) and returns normalized options, printed by check-config and compared on reload.
 */
export interface SinkType<Options extends object = object> {
  readonly type: string;
  /**
   * One instance per stream (its contract is per-stream, as exec's environment), not one per process shared by
   * every stream. Each instance then has max_bytes to itself.
   */
  readonly perStream?: boolean;
  parse(reader: ConfigReader): Options;
  create(options: Options, context: SinkContext): Sink;
}
