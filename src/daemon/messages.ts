import type { LoggerFlags } from '../cli/flags.js';
import type { StreamReport } from '../stream/wire-stream.js';
import type { StreamMetadata } from '../mesos/metadata.js';
import type { SharedSinkReport } from '../sinks/sink-set.js';

/** Daemon -> worker, over child_process IPC. `serve` comes with the pipe's handle. */
export type ToWorker =
  /** `meta`: what the daemon's /state client found so far; undefined: the path's metadata. */
  | { type: 'serve'; id: number; flags: LoggerFlags; meta?: StreamMetadata }
  /** The daemon's /state client found (more of) a stream's metadata. */
  | { type: 'metadata'; id: number; meta: StreamMetadata }
  /** Report every stream's figures, answering with the same `request`. */
  | { type: 'report'; request: number }
  | { type: 'reload' }
  /** Stop reading, write what was read, exit: the pipes keep their bytes for the next worker. */
  | { type: 'stop' };

/** A stream's figures as its worker has them; `starting`: its sandbox and sinks are being set up. */
export type WorkerStreamReport = { id: number } & (StreamReport | { state: 'starting' });

/** Worker -> daemon. */
export type FromWorker =
  /** Running as its user, taking streams. */
  | { type: 'ready' }
  /** The user could not be switched to; the worker exits. */
  | { type: 'user-failed'; message: string }
  /** The stream reached EOF and everything is written. */
  | { type: 'ended'; id: number }
  /** Its streams, and its shared sinks over all of them. */
  | { type: 'report'; request: number; streams: WorkerStreamReport[]; sinks: SharedSinkReport[] };
