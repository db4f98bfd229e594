import type { LoggerFlags } from '../cli/flags.js';

/** Daemon -> worker, over child_process IPC. `serve` comes with the pipe's handle. */
export type ToWorker =
  | { type: 'serve'; id: number; flags: LoggerFlags }
  | { type: 'reload' }
  /** Stop reading, write what was read, exit: the pipes keep their bytes for the next worker. */
  | { type: 'stop' };

/** Worker -> daemon. */
export type FromWorker =
  /** Running as its user, taking streams. */
  | { type: 'ready' }
  /** The user could not be switched to; the worker exits. */
  | { type: 'user-failed'; message: string }
  /** The stream reached EOF and everything is written. */
  | { type: 'ended'; id: number };
