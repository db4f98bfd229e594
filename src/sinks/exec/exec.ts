import { ConfigError, type ConfigReader } from '../../config-reader.js';
import { RateLimitedLog } from '../../diagnostics.js';
import type { LineBatch } from '../../lines/line-batch.js';
import type { StreamMetadata } from '../../mesos/metadata.js';
import { Sink, type SinkContext } from '../sink.js';
import type { SinkType } from '../sink-type.js';
import { execEnvironment, isReservedVariable } from './env.js';
import { describeExit, ExecProcess, isCleanExit, type ExitStatus } from './process.js';
import { ReplayWindow, type WrittenLines } from './replay-window.js';

export interface ExecOptions {
  /** argv, run without a shell; the string form of the config becomes `/bin/sh -c <string>`. */
  command: string[];
  /** Extra environment variables, on top of the helper's own. */
  env: Record<string, string>;
  /** Delay before restarting a process that ended: doubles per quick exit from `min` up to `max`. */
  restart_backoff_ms: { min: number; max: number };
  /** The newest line bytes a restarted process is given again; 0 disables. */
  replay_bytes: number;
  /** After EOF, how long the process may take to exit before its group is SIGKILLed. */
  stop_grace_ms: number;
}

/** A process that stayed up this long is healthy again: its next restart waits only the minimum backoff. */
const STABLE_UPTIME_MS = 10_000;
const LF = 0x0a;

/**
 * Feeds the stream's lines to an external process on its stdin, as the External container logger (MESOS-6003) did,
 * but supervised: it is restarted with backoff whenever it ends, and its failures only cost this sink's buffer.
 */
class ExecSink extends Sink {
  private process: ExecProcess | undefined;
  private spawns = 0;
  private meta: StreamMetadata;
  private readonly replay: ReplayWindow;
  private restartDelay: number;
  private nextStartAt = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Settles when the pending restart has happened or the sink is closing; what a send waits on meanwhile. */
  private restarted: Promise<void> = Promise.resolve();
  private announceRestart: () => void = () => undefined;
  private lastExit = 'has not started';
  private closing: Promise<void> | undefined;
  private readonly exits: RateLimitedLog;

  constructor(
    private readonly options: ExecOptions,
    context: SinkContext,
  ) {
    super(context);
    if (context.meta === undefined) throw new Error('the exec sink serves one stream: its metadata is required');
    this.meta = context.meta;
    this.replay = new ReplayWindow(options.replay_bytes);
    this.restartDelay = options.restart_backoff_ms.min;
    this.exits = new RateLimitedLog(this.log);
  }

  protected async send(batch: LineBatch): Promise<void> {
    // The newest metadata (agent enrichment arrives after the start): the next start's environment uses it.
    this.meta = batch.metas[batch.count - 1];
    const incarnation = await this.running();
    if (!(await incarnation.started)) throw new Error(`exec process ${describeExit(await incarnation.exited)}`);
    const written = encodeLines(batch);
    await incarnation.write(written.data);
    this.replay.add(written);
    this.holdElsewhere(this.replay.size);
  }

  protected override makeRoom(bytes: number): void {
    this.replay.release(bytes);
    this.holdElsewhere(this.replay.size);
  }

  protected close(): Promise<void> {
    if (this.closing === undefined) {
      clearTimeout(this.restartTimer);
      this.closing = this.shutDown();
      this.announceRestart();
    }
    return this.closing;
  }

  /**
   * The current process, started for the first line (a stream that stays silent costs no process, and by then agent
   * metadata has often arrived); while it is down, waits for its restart rather than failing the batch.
   */
  private async running(): Promise<ExecProcess> {
    for (;;) {
      if (this.closing !== undefined) throw new Error(`exec sink is closing; its process ${this.lastExit}`);
      if (this.process?.dying) await this.process.exited;
      else if (this.process !== undefined) return this.process;
      if (this.spawns === 0) return this.launch();
      await this.restarted;
    }
  }

  /** Spawns with the newest metadata; a restart first gets the replay window. */
  private launch(): ExecProcess {
    if (this.spawns++ > 0) this.countReconnect();
    const env = execEnvironment(process.env, this.options.env, this.meta);
    const incarnation = new ExecProcess(this.options.command, env, this.replay.contents());
    this.process = incarnation;
    void incarnation.exited.then((status) => this.afterExit(incarnation, status));
    this.announceRestart();
    return incarnation;
  }

  private afterExit(incarnation: ExecProcess, status: ExitStatus): void {
    if (this.process === incarnation) this.process = undefined;
    const now = Date.now();
    if (now - incarnation.startedAt >= STABLE_UPTIME_MS) this.restartDelay = this.options.restart_backoff_ms.min;
    const delay = this.restartDelay;
    this.restartDelay = Math.min(delay * 2, this.options.restart_backoff_ms.max);
    this.nextStartAt = now + delay;
    this.lastExit = describeExit(status);
    // While closing, shutDown() decides about restarts.
    if (this.closing !== undefined) return;
    this.health.state = 'down';
    this.health.lastError = `exec process ${this.lastExit}`;
    this.exits.error(
      { command: this.options.command, status: this.lastExit, restartInMs: delay },
      'exec process ended; restarting it',
    );
    this.restarted = new Promise((resolve) => (this.announceRestart = resolve));
    this.restartTimer = setTimeout(() => this.launch(), delay);
  }

  /**
   * EOF to the process, then wait for it to exit. One that ends other than with status 0 (or ended before EOF) may
   * have left lines unread, so within the grace period it is restarted with the replay window and given EOF again.
   * What is still running at the deadline is SIGKILLed with its group; its pending write then fails.
   */
  private async shutDown(): Promise<void> {
    const deadline = Date.now() + this.options.stop_grace_ms;
    let incarnation = this.process;
    for (;;) {
      if (incarnation === undefined) {
        if (this.replay.size === 0) return;
        if (this.nextStartAt >= deadline) {
          // Counted sent, and perhaps never read: the window's lines can no longer be given again.
          const unread = this.replay.counted;
          this.unsend('replay_overflow', unread.lines, unread.bytes);
          this.replay.clear();
          this.holdElsewhere(0);
          this.log.warn(
            { status: this.lastExit, lines: unread.lines, bytes: unread.bytes },
            'exec process is down at stream end; the lines it may not have read are counted as dropped (replay_overflow)',
          );
          return;
        }
        await sleep(this.nextStartAt - Date.now());
        incarnation = this.launch();
      }
      incarnation.end();
      const status = await within(incarnation.exited, deadline - Date.now());
      if (status === undefined) {
        incarnation.kill();
        await incarnation.exited;
        this.log.warn(
          { graceMs: this.options.stop_grace_ms },
          'exec process did not exit after EOF; killed',
        );
        return;
      }
      if (isCleanExit(status)) return;
      this.exits.error({ status: describeExit(status) }, 'exec process failed at stream end');
      incarnation = undefined;
    }
  }
}

/**
 * Raw line bytes, each plus '\n': the task's own bytes, as the External container logger's pipe carried them; with
 * what each line stood for in the stream (its CR and newline, and whether it completed a line).
 */
function encodeLines(batch: LineBatch): WrittenLines {
  const { count, starts, stops, partials } = batch;
  const ends = new Uint32Array(count);
  const streamLines = new Uint8Array(count);
  const streamBytes = new Uint32Array(count);
  let total = 0;
  let whole = true;
  let lines = 0;
  for (let i = 0; i < count; i++) {
    total += stops[i] - starts[i] + 1;
    ends[i] = total;
    streamLines[i] = partials[i] === 1 ? 0 : 1;
    lines += streamLines[i];
    // A line stands for the stream bytes up to the next line's start (the first one also for any before it).
    streamBytes[i] = (i + 1 < count ? starts[i + 1] : batch.bytes) - (i === 0 ? 0 : starts[i]);
    if (partials[i] === 1) whole = false;
  }
  // The last line of a stream that ended without a newline is a line too, though it is flagged partial.
  if (count > 0) streamLines[count - 1] += batch.lines - lines;
  // Whole lines and no CR: the taken bytes already are the lines, each with its newline.
  if (whole && total === batch.data.length) return { data: batch.data, ends, streamLines, streamBytes };
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const line = batch.raw(i);
    out.set(line, at);
    at += line.length;
    out[at++] = LF;
  }
  return { data: out, ends, streamLines, streamBytes };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** The promise's value, or undefined if it takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function parseCommand(reader: ConfigReader): string[] {
  const key = reader.key('command');
  if (typeof reader.map.command === 'string') {
    const script = reader.string('command');
    if (script.trim() === '') throw new ConfigError(key, script, 'must not be empty');
    return ['/bin/sh', '-c', script];
  }
  const argv = reader.stringList('command');
  if (argv === undefined) {
    throw new ConfigError(key, undefined, 'is required: a list (argv, no shell) or a string (run by /bin/sh -c)');
  }
  if (argv[0] === '') throw new ConfigError(key, argv, 'must start with the program to run');
  return argv;
}

function parseEnv(reader: ConfigReader): Record<string, string> {
  const env = reader.stringMap('env');
  for (const [name, value] of Object.entries(env)) {
    const key = `${reader.key('env')}.${name}`;
    if (isReservedVariable(name)) {
      throw new ConfigError(key, value, 'is set by the exec sink itself from the stream metadata');
    }
    if (name === '' || name.includes('=') || name.includes('\0')) {
      throw new ConfigError(key, value, 'is not a valid variable name');
    }
    if (value.includes('\0')) throw new ConfigError(key, value, 'must not contain a NUL byte');
  }
  return env;
}

export const execSink: SinkType<ExecOptions> = {
  type: 'exec',
  perStream: true,
  parse(reader: ConfigReader): ExecOptions {
    const backoff = reader.child('restart_backoff_ms');
    const min = backoff.integer('min', 100, 1, 3_600_000);
    const max = backoff.integer('max', 30_000, min, 3_600_000);
    backoff.done();
    return {
      command: parseCommand(reader),
      env: parseEnv(reader),
      restart_backoff_ms: { min, max },
      replay_bytes: reader.bytes('replay_bytes', 256 * 1024, 0),
      stop_grace_ms: reader.integer('stop_grace_ms', 1000, 0, 60_000),
    };
  },
  create(options: ExecOptions, context: SinkContext): Sink {
    return new ExecSink(options, context);
  },
};
