import { fork, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { LoggerFlags } from '../cli/flags.js';
import type { Logger } from '../diagnostics.js';
import type { FromWorker, ToWorker } from './messages.js';
import type { WorkerRecords } from './worker-records.js';

/** A stream the daemon serves: one shim's pipe. */
export interface DaemonStream {
  id: number;
  shimPid: number;
  /** The pipe's inode: a shim that reconnects is known by its pid and pipe. */
  pipeIno: number;
  flags: LoggerFlags;
  /**
   * The daemon's own open file description of the pipe (from /proc/<shim>/fd/0). Never read here (a readable
   * stream would steal bytes); it is what a worker gets, again after each worker restart.
   */
  holder: Socket;
  /** The shim's connection; undefined while the shim is away. */
  shim?: Socket;
}

export interface WorkerPoolEvents {
  ended(stream: DaemonStream): void;
  userFailed(stream: DaemonStream, message: string): void;
}

interface Worker {
  /** The task user; undefined: root, as the original runs without --user. */
  user: string | undefined;
  child?: ChildProcess;
  ready: boolean;
  streams: Map<number, DaemonStream>;
  userFailure?: string;
  startedAt: number;
  crashes: number;
  /** Set while the worker has no stream: it is stopped when this fires. */
  idleTimer?: NodeJS.Timeout;
}

const RESTART_FIRST_MS = 100;
const RESTART_MAX_MS = 5_000;
/** A worker that ran this long was not crash-looping: its successor starts at once. */
const STABLE_MS = 10_000;

/**
 * One worker process per task user (privilege separation: the worker switches to the user before it touches
 * anything, so every sandbox file operation runs as that user). A worker that dies is replaced and given its
 * streams again: the daemon still holds every pipe.
 */
export class WorkerPool {
  private readonly workers = new Map<string, Worker>();
  private stopping = false;
  private readonly exited = new Set<() => void>();

  constructor(
    /** The bundle: a worker is `node <bundle> daemon-worker <user>`. */
    private readonly bundle: string,
    private readonly records: WorkerRecords,
    private readonly log: Logger,
    private readonly events: WorkerPoolEvents,
    /** A worker left without streams this long exits: task users come and go. */
    private readonly idleMs: number,
  ) {}

  serve(stream: DaemonStream): void {
    const key = stream.flags.user ?? '';
    let worker = this.workers.get(key);
    if (worker === undefined) {
      worker = { user: stream.flags.user, ready: false, streams: new Map(), startedAt: 0, crashes: 0 };
      this.workers.set(key, worker);
      this.start(worker);
    }
    clearTimeout(worker.idleTimer);
    worker.idleTimer = undefined;
    worker.streams.set(stream.id, stream);
    if (worker.ready) this.hand(worker, stream);
  }

  reload(): void {
    for (const worker of this.workers.values()) if (worker.ready) this.tell(worker, { type: 'reload' });
  }

  /** Every worker stops reading, writes what it read and exits; resolves when all have. */
  async stop(): Promise<void> {
    this.stopping = true;
    const running = [...this.workers.values()].filter((worker) => worker.child !== undefined);
    for (const worker of running) this.tell(worker, { type: 'stop' });
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if ([...this.workers.values()].every((worker) => worker.child === undefined)) {
          this.exited.delete(check);
          resolve();
        }
      };
      this.exited.add(check);
      check();
    });
  }

  private start(worker: Worker): void {
    // `advanced`: the flags hold a Buffer (--logrotate_options, byte for byte), which JSON would not bring back.
    const child = fork(this.bundle, ['daemon-worker', worker.user ?? ''], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    worker.child = child;
    worker.ready = false;
    worker.startedAt = Date.now();
    if (child.pid !== undefined) this.records.add(child.pid);
    child.on('message', (message: FromWorker) => this.onMessage(worker, message));
    // A failed fork reports 'error' and no 'exit'.
    child.on('error', (err) => {
      this.log.error({ user: worker.user, err: err.message }, 'worker process failed');
      if (child.pid === undefined) this.onExit(worker, child, null, null);
    });
    child.once('exit', (code, signal) => this.onExit(worker, child, code, signal));
  }

  private onMessage(worker: Worker, message: FromWorker): void {
    switch (message.type) {
      case 'ready':
        worker.ready = true;
        for (const stream of worker.streams.values()) this.hand(worker, stream);
        return;
      case 'user-failed':
        worker.userFailure = message.message;
        return this.failStreams(worker);
      case 'ended': {
        const stream = worker.streams.get(message.id);
        if (stream === undefined) return;
        worker.streams.delete(message.id);
        this.retireWhenIdle(worker);
        return this.events.ended(stream);
      }
    }
  }

  private retireWhenIdle(worker: Worker): void {
    if (worker.streams.size > 0 || worker.idleTimer !== undefined) return;
    worker.idleTimer = setTimeout(() => {
      worker.idleTimer = undefined;
      if (worker.streams.size > 0 || this.stopping) return;
      // Out of the pool at once: a stream for this user from now on gets a new worker.
      this.workers.delete(worker.user ?? '');
      this.tell(worker, { type: 'stop' });
    }, this.idleMs);
  }

  private failStreams(worker: Worker): void {
    for (const stream of worker.streams.values()) this.events.userFailed(stream, worker.userFailure!);
    worker.streams.clear();
  }

  private onExit(worker: Worker, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (worker.child !== child) return;
    if (child.pid !== undefined) this.records.remove(child.pid);
    worker.child = undefined;
    worker.ready = false;
    for (const check of [...this.exited]) check();
    clearTimeout(worker.idleTimer);
    if (this.stopping) return;
    if (worker.userFailure !== undefined) this.failStreams(worker);
    if (worker.streams.size === 0) {
      if (this.workers.get(worker.user ?? '') === worker) this.workers.delete(worker.user ?? '');
      return;
    }
    if (Date.now() - worker.startedAt >= STABLE_MS) worker.crashes = 0;
    const delay = worker.crashes === 0 ? 0 : Math.min(RESTART_FIRST_MS * 2 ** (worker.crashes - 1), RESTART_MAX_MS);
    worker.crashes++;
    this.log.error({ user: worker.user, code, signal, streams: worker.streams.size, restartInMs: delay }, 'worker exited; starting another for its streams');
    setTimeout(() => this.start(worker), delay);
  }

  private hand(worker: Worker, stream: DaemonStream): void {
    // The raw pipe handle, not the Socket: the worker gets it unread and wraps it with its own reused buffer.
    const handle = (stream.holder as unknown as { _handle: object })._handle;
    this.tell(worker, { type: 'serve', id: stream.id, flags: stream.flags }, handle);
  }

  private tell(worker: Worker, message: ToWorker, handle?: object): void {
    // A worker that exits meanwhile is restarted and told again; its 'exit' says so.
    worker.child?.send(message, handle as Socket | undefined, { keepOpen: true }, (err) => {
      if (err !== null) this.log.warn({ user: worker.user, message: message.type, err: err.message }, 'worker did not take a message');
    });
  }
}
