import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { Socket, type Server } from 'node:net';
import { parseArgs } from 'node:util';
import { prepareSpoolDirs } from '../buffers/spool-dirs.js';
import { DEFAULT_CONFIG, loadConfigFromEnv, type SplitterConfig } from '../config/config.js';
import { showListenAddress } from '../config/daemon-section.js';
import { flagsExit, switchUserExit, type EarlyExit } from '../cli/early-exit.js';
import { parseLoggerFlags, type LoggerFlags } from '../cli/flags.js';
import { onSighup } from '../cli/sighup.js';
import { createDiagnostics, type Logger } from '../diagnostics.js';
import { metadataFromPath } from '../mesos/metadata.js';
import { pageSize } from '../system.js';
import { claimSocketPath, ListenError, listenPrivately } from './listener.js';
import { UnsafeDirError } from './private-dir.js';
import { LogrotateCheck } from './logrotate-check.js';
import { MetricsServer } from './metrics-server.js';
import {
  acceptedFrame,
  exitFrame,
  isCommit,
  isStatusRequest,
  MAX_HELLO_BYTES,
  parseHello,
  ProtocolError,
  statusFrame,
  type Hello,
} from './protocol.js';
import { SharedEnrichment } from './shared-enrichment.js';
import { DEFAULT_SOCKET, daemonSocketPath } from './socket-path.js';
import { buildStatus, type DaemonStatus } from './status.js';
import { WorkerPool, type DaemonStream } from './worker-pool.js';
import { WorkerRecords } from './worker-records.js';

const DEFAULT_STATE_DIR = '/run/mesos-log-splitter';
const DEFAULT_WORKER_IDLE_MS = 60_000;
/** A shim sends its hello at once, and its commit once it reads `accepted`; a connection that has not within this is dropped. */
const HELLO_TIMEOUT_MS = 2_000;
/** How long a new daemon waits for a killed predecessor's workers to finish writing. */
const PREVIOUS_WORKERS_BOUND_MS = 10_000;

const USAGE = `Usage: mesos-log-splitter daemon [--socket PATH] [--state-dir DIR] [--worker-idle-ms N]

  --socket PATH        where shims connect (default: $LOG_SPLITTER_DAEMON_SOCKET or ${DEFAULT_SOCKET})
  --state-dir DIR      the daemon's state: its workers' pids (default: ${DEFAULT_STATE_DIR})
  --worker-idle-ms N   a task user's worker exits after N ms without streams (default: ${DEFAULT_WORKER_IDLE_MS})
`;

/** `mesos-log-splitter daemon`: serves every stream of the agent whose shim hands it over. */
export async function runDaemon(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { socket: { type: 'string' }, 'state-dir': { type: 'string' }, 'worker-idle-ms': { type: 'string' } },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 1;
  }
  const socketPath = daemonSocketPath(values.socket);
  const stateDir = values['state-dir'] ?? DEFAULT_STATE_DIR;
  const workerIdleMs = Number(values['worker-idle-ms'] ?? DEFAULT_WORKER_IDLE_MS);
  if (!Number.isInteger(workerIdleMs) || workerIdleMs < 0) {
    process.stderr.write(`--worker-idle-ms must be a whole number of milliseconds\n\n${USAGE}`);
    return 1;
  }
  const log = createDiagnostics({ daemon: socketPath });
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception; carrying on'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection; carrying on'));
  let daemon;
  try {
    daemon = new Daemon(socketPath, stateDir, workerIdleMs, log);
    await daemon.start();
  } catch (err) {
    if (!(err instanceof ListenError || err instanceof UnsafeDirError)) throw err;
    process.stderr.write(`mesos-log-splitter daemon: ${err.message}\n`);
    return 1;
  }
  return daemon.finished;
}

class Daemon {
  private readonly streams = new Map<number, DaemonStream>();
  private nextId = 1;
  private server?: Server;
  private readonly page = pageSize();
  private readonly logrotateCheck = new LogrotateCheck();
  private readonly records: WorkerRecords;
  private readonly pool: WorkerPool;
  private readonly enrichment: SharedEnrichment;
  private readonly metrics: MetricsServer;
  /** The last valid config: the daemon's own settings and the agent's /state client follow it. */
  private config: SplitterConfig = DEFAULT_CONFIG;
  private stopping = false;
  private done: (code: number) => void = () => undefined;
  readonly finished = new Promise<number>((resolve) => (this.done = resolve));

  constructor(
    private readonly socketPath: string,
    stateDir: string,
    workerIdleMs: number,
    private readonly log: Logger,
  ) {
    this.records = new WorkerRecords(stateDir, process.argv[1]);
    this.pool = new WorkerPool(process.argv[1], this.records, log, {
      ended: (stream) => this.end(stream, { code: 0, stdout: '', stderr: '' }),
      userFailed: (stream, message) => this.end(stream, switchUserExit(stream.flags.user!, new Error(message))),
      prepare: (user) => prepareSpoolDirs(this.config.sinks, user, log),
    }, workerIdleMs);
    this.enrichment = new SharedEnrichment(log, (id, meta) => {
      const stream = this.streams.get(id);
      if (stream === undefined) return;
      stream.meta = meta;
      this.pool.updateMetadata(stream);
    });
    this.metrics = new MetricsServer(log, () => this.status());
  }

  async start(): Promise<void> {
    // Refuse before touching the state dir: the workers recorded there may be a running daemon's.
    await claimSocketPath(this.socketPath);
    await this.records.waitForPrevious(this.log, PREVIOUS_WORKERS_BOUND_MS);
    this.server = await listenPrivately(this.socketPath, (socket) => this.onConnection(socket));
    this.applyConfig();
    onSighup(() => {
      this.applyConfig();
      this.pool.reload();
    });
    process.on('SIGTERM', () => void this.stop('SIGTERM'));
    process.on('SIGINT', () => void this.stop('SIGINT'));
    this.log.info({ socket: this.socketPath }, 'daemon serving');
  }

  /**
   * Each worker loads the config as its user, as a standalone helper does; the daemon reports a bad one and keeps
   * its last good one for its own settings (`daemon:`) and the agent's /state client (`agent:`).
   */
  private applyConfig(): void {
    try {
      this.config = loadConfigFromEnv();
      this.log.info({ config: this.config.source ?? 'built-in default', sinks: this.config.sinks.map((s) => s.name) }, 'config');
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'invalid config: each stream keeps its running config or runs sandbox-only');
    }
    this.enrichment.configure(this.config.agent, this.config.sinks.length > 0);
    this.metrics.listen(this.config.daemon.metricsListen);
  }

  /** Every stream and sink, each worker asked for its figures (bounded by daemon.status_timeout_ms). */
  private async status(): Promise<DaemonStatus> {
    const workers = await this.pool.report(this.config.daemon.statusTimeoutMs);
    const listen = this.config.daemon.metricsListen;
    return buildStatus(
      { pid: process.pid, socket: this.socketPath, ...(listen === undefined ? {} : { metrics_listen: showListenAddress(listen) }) },
      workers,
    );
  }

  /** Workers write what they read and exit; the shims keep the pipes and hand them to the next daemon. */
  private async stop(why: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.log.info({ why, streams: this.streams.size }, 'daemon stopping');
    this.server?.close();
    this.metrics.listen(undefined);
    await this.pool.stop();
    for (const stream of this.streams.values()) {
      stream.shim?.destroy();
      stream.holder.destroy();
    }
    this.log.info('daemon stopped');
    this.done(0);
  }

  private onConnection(socket: Socket): void {
    socket.on('error', () => undefined);
    if (this.stopping) return void socket.destroy();
    let chunks: Buffer[] = [];
    let size = 0;
    /** Set once the hello is answered `accepted`: the connection waits for the shim's commit. */
    let accepted: { hello: Hello; flags: LoggerFlags } | undefined;
    const timer = setTimeout(() => drop(accepted === undefined ? 'no complete hello in time' : 'no commit in time'), HELLO_TIMEOUT_MS);
    // A shim that gave up before committing closes its connection: nothing is kept for it.
    socket.once('close', () => clearTimeout(timer));
    const drop = (why: string): void => {
      clearTimeout(timer);
      this.log.warn({ why }, 'dropped a connection on the daemon socket');
      socket.destroy();
    };
    const done = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      // The shim says nothing more; reading on only notices when it goes.
      socket.on('data', () => undefined);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > MAX_HELLO_BYTES) return drop(`hello larger than ${MAX_HELLO_BYTES} bytes`);
      chunks.push(chunk);
      const data = Buffer.concat(chunks, size);
      try {
        if (accepted !== undefined) {
          if (isCommit(data) === undefined) return;
          done();
          const { hello, flags } = accepted;
          return this.guarded(socket, hello.pid, () => this.onCommit(socket, hello, flags));
        }
        const status = isStatusRequest(data);
        if (status === true) {
          done();
          return void this.answerStatus(socket);
        }
        if (status === undefined) return;
        const hello = parseHello(data);
        if (hello === undefined) return;
        this.guarded(socket, hello.pid, () => {
          const flags = this.onHello(socket, hello);
          if (flags === undefined) return done();
          accepted = { hello, flags };
          chunks = [];
          size = 0;
        });
      } catch (err) {
        if (err instanceof ProtocolError) return drop(err.message);
        throw err;
      }
    };
    socket.on('data', onData);
  }

  /** A bug must not leave the shim waiting for an answer forever: it reconnects (or falls back) instead. */
  private guarded(socket: Socket, pid: number, handle: () => void): void {
    try {
      handle();
    } catch (err) {
      this.log.error({ err, shim: pid }, 'handing over a stream failed');
      socket.destroy();
    }
  }

  private answerStatus(socket: Socket): void {
    this.status().then(
      (status) => socket.end(statusFrame(status)),
      (err) => {
        this.log.error({ err }, 'gathering the status failed');
        socket.destroy();
      },
    );
  }

  /** Valid flags are answered `accepted` and returned; anything else gets its exit at once (undefined). */
  private onHello(shim: Socket, hello: Hello): LoggerFlags | undefined {
    // Decoded as node decodes its own argv, with the bytes beside for the flags kept byte for byte (raw-argv.ts).
    const parsed = parseLoggerFlags(hello.argv.map((arg) => arg.toString('utf8')), this.page, hello.argv, this.logrotateCheck.check);
    if (parsed.kind !== 'ok') return void shim.end(exitFrame(flagsExit(parsed)));
    shim.write(acceptedFrame());
    return parsed.flags;
  }

  /**
   * The shim committed: it will not fall back, so its pipe is the daemon's to take. Not before: a shim in `auto`
   * that gave up waiting has exec'd the standalone helper, which reads the same pipe under the same pid.
   */
  private onCommit(shim: Socket, hello: Hello, flags: LoggerFlags): void {
    // Gone already (killed): the pid may be another process by now. Stopping: the shim hands it to the next daemon.
    if (shim.destroyed || shim.readableEnded || this.stopping) return void shim.destroy();
    const pipe = openShimPipe(hello.pid);
    if (typeof pipe === 'string') {
      return void shim.end(exitFrame({ code: 1, stdout: '', stderr: `mesos-logrotate-logger: ${pipe}\n` }));
    }
    // A shim that lost only its connection: same pid, same pipe.
    const known = [...this.streams.values()].find((stream) => stream.shimPid === hello.pid && stream.pipeIno === pipe.ino);
    if (known !== undefined) {
      closeSync(pipe.fd);
      return this.attach(known, shim);
    }
    const holder = new Socket({ fd: pipe.fd, readable: false, writable: false });
    // From the path alone: the root daemon touches no sandbox file.
    const meta = metadataFromPath(flags.logFilename, flags.user);
    const stream: DaemonStream = { id: this.nextId++, shimPid: hello.pid, pipeIno: pipe.ino, flags, meta, holder };
    this.streams.set(stream.id, stream);
    this.log.info({ shim: hello.pid, log_filename: flags.logFilename, user: flags.user, resumed: hello.resumed }, 'stream handed over');
    this.attach(stream, shim);
    this.enrichment.add(stream.id, meta);
    this.pool.serve(stream);
  }

  private attach(stream: DaemonStream, shim: Socket): void {
    stream.shim?.destroy();
    stream.shim = shim;
    // The shim was killed: the daemon's own descriptor keeps the stream going to EOF.
    shim.once('close', () => {
      if (stream.shim === shim) stream.shim = undefined;
    });
  }

  private end(stream: DaemonStream, exit: EarlyExit): void {
    this.streams.delete(stream.id);
    this.enrichment.remove(stream.id);
    stream.shim?.end(exitFrame(exit));
    stream.holder.destroy();
  }
}

/**
 * The daemon's own read end of the shim's stdin (a new open file description of the same pipe), never read here.
 * A string says why it cannot be had.
 */
function openShimPipe(pid: number): { fd: number; ino: number } | string {
  let fd: number;
  try {
    // Root may open another process's fds (CAP_SYS_PTRACE).
    fd = openSync(`/proc/${pid}/fd/0`, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    return `cannot open the stdin of pid ${pid}: ${(err as Error).message}`;
  }
  const stat = fstatSync(fd);
  if (!stat.isFIFO()) {
    closeSync(fd);
    return 'stdin is not a pipe: the daemon serves pipes only (LOG_SPLITTER_MODE=standalone serves anything)';
  }
  return { fd, ino: stat.ino };
}
