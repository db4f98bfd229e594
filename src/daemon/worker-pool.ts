import { fork, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { LoggerFlags } from '../cli/flags.js';
import type { Logger } from '../diagnostics.js';
import type { StreamMetadata } from '../mesos/metadata.js';
import type { SharedSinkReport } from '../sinks/sink-set.js';
import type { FromWorker, ToWorker, WorkerStreamReport } from './messages.js';
import type { WorkerRecords } from './worker-records.js';

/** A stream the daemon serves: one shim's pipe. */
export interface DaemonStream {
  id: number;
  shimPid: number;
  /** The pipe's inode: a shim that reconnects is known by its pid and pipe. */
  pipeIno: number;
  flags: LoggerFlags;
  /** From the path, then from the agent's /state (the daemon's shared client): what the worker's lines carry. */
  meta: StreamMetadata;
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
  /** Before a worker for `user` starts, and at a reload: the daemon makes, as root, what the worker cannot. */
  prepare(user: string | undefined): void;
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
  /** Report requests this worker has not answered yet. */
  reports: Map<number, (answer: WorkerAnswer) => void>;
}

type WorkerAnswer = { streams: WorkerStreamReport[]; sinks: SharedSinkReport[] };

/** What one worker said when asked for its streams' figures. */
export interface WorkerReport {
  user: string | undefined;
  pid: number | undefined;
  /** starting: not yet running as its user; not answering: asked, and no answer within the bound. */
  state: 'ready' | 'starting' | 'not answering';
  /** The streams the daemon gave it, each with its figures when it answered. */
  streams: { stream: DaemonStream; report?: WorkerStreamReport }[];
  /** Its shared sinks, when it answered. */
  sinks?: SharedSinkReport[];
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
  /** By task user; undefined (no --user) is root, and differs from an empty --user=, a user that does not exist. */
  private readonly workers = new Map<string | undefined, Worker>();
  private stopping = false;
  private readonly exited = new Set<() => void>();
  private nextReport = 1;

  constructor(
    /** The bundle: a worker is `node <bundle> daemon-worker [user]` (no argument: root). */
    private readonly bundle: string,
    private readonly records: WorkerRecords,
    private readonly log: Logger,
    private readonly events: WorkerPoolEvents,
    /** A worker left without streams this long exits: task users come and go. */
    private readonly idleMs: number,
  ) {}

  serve(stream: DaemonStream): void {
    const key = stream.flags.user;
    let worker = this.workers.get(key);
    if (worker === undefined) {
      worker = { user: stream.flags.user, ready: false, streams: new Map(), startedAt: 0, crashes: 0, reports: new Map() };
      this.workers.set(key, worker);
      this.start(worker);
    }
    clearTimeout(worker.idleTimer);
    worker.idleTimer = undefined;
    worker.streams.set(stream.id, stream);
    if (worker.ready) this.hand(worker, stream);
  }

  /** The stream's worker gets its new metadata (a worker not ready yet gets it with the stream). */
  updateMetadata(stream: DaemonStream): void {
    const worker = this.workers.get(stream.flags.user);
    if (worker?.ready && worker.streams.has(stream.id)) this.tell(worker, { type: 'metadata', id: stream.id, meta: stream.meta });
  }

  /**
   * Asks every ready worker for its streams' figures and waits at most `timeoutMs` for each: a stuck worker shows as
   * not answering, and never holds up the caller longer than that.
   */
  async report(timeoutMs: number): Promise<WorkerReport[]> {
    return Promise.all(
      [...this.workers.values()].map(async (worker): Promise<WorkerReport> => {
        const base = { user: worker.user, pid: worker.child?.pid };
        const streams = [...worker.streams.values()];
        if (!worker.ready) return { ...base, state: 'starting', streams: streams.map((stream) => ({ stream })) };
        const request = this.nextReport++;
        const answer = await new Promise<WorkerAnswer | undefined>((resolve) => {
          const timer = setTimeout(() => {
            worker.reports.delete(request);
            resolve(undefined);
          }, timeoutMs);
          worker.reports.set(request, (reports) => {
            clearTimeout(timer);
            worker.reports.delete(request);
            resolve(reports);
          });
          this.tell(worker, { type: 'report', request });
        });
        if (answer === undefined) return { ...base, state: 'not answering', streams: streams.map((stream) => ({ stream })) };
        const byId = new Map(answer.streams.map((report) => [report.id, report]));
        const reported = streams.map((stream) => ({ stream, report: byId.get(stream.id) }));
        return { ...base, state: 'ready', streams: reported, sinks: answer.sinks };
      }),
    );
  }

  reload(): void {
    for (const worker of this.workers.values()) {
      this.events.prepare(worker.user);
      if (worker.ready) this.tell(worker, { type: 'reload' });
    }
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
    this.events.prepare(worker.user);
    // `advanced`: the flags hold a Buffer (--logrotate_options, byte for byte), which JSON would not bring back.
    const child = fork(this.bundle, ['daemon-worker', ...(worker.user === undefined ? [] : [worker.user])], {
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
      case 'report':
        return worker.reports.get(message.request)?.({ streams: message.streams, sinks: message.sinks });
    }
  }

  private retireWhenIdle(worker: Worker): void {
    if (worker.streams.size > 0 || worker.idleTimer !== undefined) return;
    worker.idleTimer = setTimeout(() => {
      worker.idleTimer = undefined;
      if (worker.streams.size > 0 || this.stopping) return;
      // Out of the pool at once: a stream for this user from now on gets a new worker.
      this.workers.delete(worker.user);
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
      if (this.workers.get(worker.user) === worker) this.workers.delete(worker.user);
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
    this.tell(worker, { type: 'serve', id: stream.id, flags: stream.flags, meta: stream.meta }, handle);
  }

  private tell(worker: Worker, message: ToWorker, handle?: object): void {
    // A worker that exits meanwhile is restarted and told again; its 'exit' says so.
    worker.child?.send(message, handle as Socket | undefined, { keepOpen: true }, (err) => {
      if (err !== null) this.log.warn({ user: worker.user, message: message.type, err: err.message }, 'worker did not take a message');
    });
  }
}
