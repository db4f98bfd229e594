import type { LoggerFlags } from '../cli/flags.js';
import { loadConfigFromEnv } from '../config/config.js';
import { loadConfig } from '../config/load.js';
import { wireStream, type WiredStream } from '../stream/wire-stream.js';
import { onSighup } from '../cli/sighup.js';
import { createDiagnostics } from '../diagnostics.js';
import type { StreamMetadata } from '../mesos/metadata.js';
import { openPipeHandle, type PipeHandle } from '../pipe-source.js';
import { SinkSet } from '../sinks/sink-set.js';
import { switchUser } from '../system.js';
import type { FromWorker, ToWorker, WorkerStreamReport } from './messages.js';

const WORKER_SANDBOX_HIGH_WATER_MARK = 64 * 1024;

/**
 * `mesos-log-splitter daemon-worker [USER]`: forked by the daemon, one per task user. Switches to the user before
 * anything else (setgid, initgroups, setuid: fork's own uid/gid options would drop the supplementary groups), then
 * serves each pipe the daemon hands over as the standalone helper serves its one.
 */
export async function runDaemonWorker(argv: string[]): Promise<number> {
  // No argument: root, as the helper without --user. An empty one is a user name, which switchUser rejects as the
  // helper does.
  const user = argv.length === 0 ? undefined : argv[0];
  const log = createDiagnostics({ worker: user ?? 'root' });
  const send = (message: FromWorker): Promise<void> =>
    new Promise((resolve) => (process.send ? process.send(message, undefined, {}, () => resolve()) : resolve()));
  if (process.send === undefined) {
    log.error('daemon-worker runs under the daemon only');
    return 1;
  }
  if (user !== undefined) {
    try {
      switchUser(user);
    } catch (err) {
      await send({ type: 'user-failed', message: (err as Error).message });
      return 1;
    }
  }
  // As in the helper: a bug that escapes every handler must not drop the pipes of every stream here.
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception; carrying on'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection; carrying on'));

  let config = loadConfig(log);
  // Each configured sink runs once here, for every stream of this worker (exec, per stream, excepted).
  const outputs = new SinkSet(log, config);
  const streams = new Map<number, WiredStream>();
  /** Streams still being set up (their logrotate conf written): not yet in `streams`; metadata the daemon sent meanwhile. */
  const starting = new Map<number, StreamMetadata | undefined>();
  let stopping = false;
  /** When a stopping worker's sinks must be done: the streams' shutdown timeout, from the stop. */
  let stopDeadline = 0;
  let done: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (done = resolve));
  const exitWhenIdle = (): void => {
    if (!stopping || streams.size > 0 || starting.size > 0) return;
    // Every stream's queue is delivered (or its deadline passed): what the sinks still owe (acknowledgements, a
    // replay) gets the shutdown timeout.
    void outputs.stop(Math.max(Date.now(), stopDeadline)).then(() => done(0));
  };
  // The daemon said so, or it is gone (SIGKILL, crash): stop reading and write everything read. The daemon (or its
  // successor) holds the pipes and hands them to the next worker.
  const stop = (why: string): void => {
    if (stopping) return;
    stopping = true;
    stopDeadline = Date.now() + config.shutdownTimeoutMs;
    log.info({ why, streams: streams.size }, 'worker stopping: writing what it read');
    for (const stream of streams.values()) stream.stop();
    exitWhenIdle();
  };

  process.on('message', (message: ToWorker, handle?: PipeHandle) => {
    switch (message.type) {
      case 'serve':
        if (!stopping && handle !== undefined) void serve(message.id, message.flags, message.meta, handle);
        return;
      case 'metadata':
        if (starting.has(message.id)) starting.set(message.id, message.meta);
        else streams.get(message.id)?.updateMetadata(message.meta);
        return;
      case 'report':
        return void send({ type: 'report', request: message.request, streams: report(), sinks: outputs.reports() });
      case 'reload':
        return reload();
      case 'stop':
        return stop('told by the daemon');
    }
  });
  process.on('disconnect', () => stop('the daemon is gone'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  async function serve(id: number, flags: LoggerFlags, meta: StreamMetadata | undefined, handle: PipeHandle): Promise<void> {
    const streamLog = createDiagnostics({ log_filename: flags.logFilename });
    starting.set(id, meta);
    // The daemon asks the agent's /state for all its streams (docs/daemon.md). A worker that dies loses what it read
    // and had not written, the batch being written and the queue behind it: each is kept under 128 KiB (a 64 KiB
    // mark plus one 64 KiB read), so that stays within 256 KiB per stream.
    const stream = await wireStream(flags, () => openPipeHandle(handle), config, streamLog, {
      ownEnrichment: false,
      sandboxHighWaterMark: WORKER_SANDBOX_HIGH_WATER_MARK,
      outputs,
    });
    const found = starting.get(id);
    starting.delete(id);
    if (found !== undefined) stream.updateMetadata(found);
    streams.set(id, stream);
    const ended = stream.run();
    if (stopping) stream.stop();
    await ended;
    if (!stopping) await send({ type: 'ended', id });
    streams.delete(id);
    exitWhenIdle();
  }

  function report(): WorkerStreamReport[] {
    return [
      ...[...starting.keys()].map((id) => ({ id, state: 'starting' as const })),
      ...[...streams].map(([id, stream]) => ({ id, ...stream.report() })),
    ];
  }

  function reload(): void {
    try {
      config = loadConfigFromEnv();
    } catch (err) {
      return log.error({ err: (err as Error).message }, 'config reload failed; keeping the running config');
    }
    // Streams detach from replaced and removed sinks before those stop taking lines and deliver what they hold.
    const retire = outputs.reconfigure(config);
    for (const stream of streams.values()) stream.reload(config);
    retire();
  }
  onSighup(reload);
  await send({ type: 'ready' });
  return finished;
}
